"""Broken: the scenario calls os._exit(4) while loading (line 11).

os._exit ends a process at once, without cleanup: optdbg must refuse it in scenario code,
as it refuses input(), and report the load failure at line 11 (exit 2).
"""

import os

import torch

os._exit(4)
t = torch.tensor([1.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)


def forward():
    return (t**2).sum()
