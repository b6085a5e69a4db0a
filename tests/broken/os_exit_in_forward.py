"""Broken: forward calls os._exit(5) (line 16).

optdbg must refuse os._exit in scenario code: each forward is an op error naming line 16,
the state unchanged, and the session carries on (the CLI exits 0).
"""

import os

import torch

t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)


def forward():
    os._exit(5)
