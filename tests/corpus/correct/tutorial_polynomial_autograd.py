"""PyTorch tutorial "Learning PyTorch with Examples", autograd version: a cubic fit to
sin(x) with a, b, c, d updated by hand under torch.no_grad(), lr 1e-6, 2000 iterations."""
# corpus: ops="f b s z" repeat=300

import math

import torch

x = torch.linspace(-math.pi, math.pi, 2000)
y = torch.sin(x)
a = torch.randn((), requires_grad=True)
b = torch.randn((), requires_grad=True)
c = torch.randn((), requires_grad=True)
d = torch.randn((), requires_grad=True)
learning_rate = 1e-6


def forward():
    y_pred = a + b * x + c * x**2 + d * x**3
    return (y_pred - y).pow(2).sum()


def step():
    with torch.no_grad():
        for t in (a, b, c, d):
            t -= learning_rate * t.grad


def zero_grad():
    for t in (a, b, c, d):
        t.grad = None
