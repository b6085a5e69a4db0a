"""Cubic fit to sin(x) by hand: the lecture's manual loop

The PyTorch tutorial's polynomial fit with the update written out: step()
does a -= learning_rate * a.grad for a, b, c, d inside torch.no_grad(),
zero_grad() sets each .grad to None. The values equal that hand-written
loop bit for bit. Press i and read the update panel: the rule with its
numbers. Then try removing torch.no_grad() from step(), or writing
a = a - learning_rate * a.grad, and press s to see what goes wrong.
"""

import math

import torch

learning_rate = 1e-6
n_points = 2000

x = torch.linspace(-math.pi, math.pi, n_points)
y = torch.sin(x)

a = torch.randn((), requires_grad=True)
b = torch.randn((), requires_grad=True)
c = torch.randn((), requires_grad=True)
d = torch.randn((), requires_grad=True)


def forward():
    y_pred = a + b * x + c * x**2 + d * x**3
    return (y_pred - y).pow(2).sum()


def step():
    global a, b, c, d
    with torch.no_grad():
        a -= learning_rate * a.grad
        b -= learning_rate * b.grad
        c -= learning_rate * c.grad
        d -= learning_rate * d.grad


def zero_grad():
    a.grad = None
    b.grad = None
    c.grad = None
    d.grad = None
