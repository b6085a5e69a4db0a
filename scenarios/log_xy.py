"""log(x*y): reading a graph with two leaves

x = linspace(2, 1, 11) and y = linspace(1, 2, 11) both require grad;
loss = log(x * y).sum(). Press f and read the graph: SumBackward0 ->
LogBackward0 -> MulBackward0 -> one AccumulateGrad for x, one for y.
Press b: x.grad = 1/x and y.grad = 1/y. A plain SGD (lr 0.01) is
attached only so that s and i do something; the loss has no minimum:
keep pressing i and x*y shrinks toward 0 until, near the 53rd forward, the
loss turns NaN and the non-finite warning says where it came from.
"""

import torch

x = torch.linspace(2, 1, 11, requires_grad=True)
y = torch.linspace(1, 2, 11, requires_grad=True)

optimizer = torch.optim.SGD([x, y], lr=0.01)


def forward():
    z = torch.log(x * y)
    return z.sum()
