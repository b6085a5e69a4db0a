"""Computation-graph toy: z = 2*(a - b) + c

The smallest graph worth reading: a = 3, b = 4, c = 5, z = 2*(a - b) + c.
Only b requires grad and only b is given to the optimizer, so dz/db = -2.
SGD maximizes z (maximize=True, lr 0.1): press i and b moves to 3.8.
Press f b f b (no z) and watch b.grad accumulate to -4; press f b b and
PyTorch refuses the second backward: the graph saved the 2 and freed it.
Ten presses of i take b to 2.0; ten of f b s (no z) take it to -7.0,
with b.grad = -20: the forgotten zero_grad in action.
"""

import torch

a = torch.tensor(3.0)
b = torch.tensor(4.0, requires_grad=True)
c = torch.tensor(5.0)

optimizer = torch.optim.SGD([b], lr=0.1, maximize=True)


def forward():
    return 2 * (a - b) + c
