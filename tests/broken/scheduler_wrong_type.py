"""Broken: `scheduler` is a number (a decay factor), not an LR scheduler (line 11).

optdbg must refuse to load it: exit 2, "`scheduler` is a float without a step() method",
naming line 11.
"""

import torch

t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)
scheduler = 0.9


def forward():
    return (t**2).sum()
