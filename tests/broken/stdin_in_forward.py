"""Broken: forward reads sys.stdin.readline() (line 16).

optdbg runs scenarios without a prompt and the terminal's keys are the user's: reading
stdin must be refused as input() is, each forward an op error naming line 16.
"""

import sys

import torch

t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)


def forward():
    scale = float(sys.stdin.readline() or 1)
    return (t**2).sum() * scale
