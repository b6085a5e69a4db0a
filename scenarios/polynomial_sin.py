"""Cubic fit to sin(x): the classic four-scalar example

Fit y = sin(x) on 2000 points in [-pi, pi] with a + b*x + c*x^2 + d*x^3;
a, b, c, d are scalars drawn from a standard normal, the loss is the sum
of squared errors and SGD uses lr 1e-6 (the sum is large, so lr is tiny).
Press i a few times: the loss falls fast at first, then slowly.
Run 2000 iterations and the fit reaches about 0.84*x - 0.09*x^3 (a and
c near 0), loss near 12. Each of the four scalars is its own leaf.
"""

import math

import torch

x = torch.linspace(-math.pi, math.pi, 2000)
y = torch.sin(x)

a = torch.randn((), requires_grad=True)
b = torch.randn((), requires_grad=True)
c = torch.randn((), requires_grad=True)
d = torch.randn((), requires_grad=True)

optimizer = torch.optim.SGD([a, b, c, d], lr=1e-6)


def forward():
    y_pred = a + b * x + c * x**2 + d * x**3
    return ((y_pred - y) ** 2).sum()
