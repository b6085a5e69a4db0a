"""Broken: forward calls sys.exit(1) (line 16), as a script's error path might.

optdbg must not exit: the forward is an op error (SystemExit) naming line 16, and the
session carries on; the CLI exits 0.
"""

import sys

import torch

t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)


def forward():
    sys.exit(1)
