"""Computation-graph toy: z = 2*(a - b) + c

The smallest graph worth reading: a = 3, b = 4, c = 5, z = 2*(a - b) + c.
Only b requires grad and only b is given to the optimizer, so dz/db = -2.
SGD maximizes z (maximize=True, lr 0.1): press i and b moves to 3.8.
Press f then b twice without z and watch b.grad accumulate to -4.
Ten presses of i take b to 2.0; ten of f b s (no z) take it to -7.0,
with b.grad = -20: the forgotten zero_grad in action.
"""

import torch

a = torch.tensor(3.0)
b = torch.tensor(4.0, requires_grad=True)
c = torch.tensor(5.0)

optimizer = torch.optim.SGD([b], lr=0.1, maximize=True)


def forward():
    # z = c + 2 * (a - b). torch.add's alpha keeps the 2 out of the graph, so
    # backward saves no tensors and may run twice on the same graph (plain
    # `2 * (a - b)` saves the 2 and would need retain_graph=True).
    return torch.add(c, a - b, alpha=2)
