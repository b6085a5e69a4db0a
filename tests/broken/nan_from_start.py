"""Broken: a parameter is NaN from the start, so the loss and every grad are NaN.

PyTorch raises nothing: every op succeeds. optdbg must carry on and report the NaNs
faithfully (JSON writes NaN), never crash on formatting them; the CLI exits 0.
"""

import torch

w = torch.tensor([float("nan"), 1.0], requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)


def forward():
    return ((w - 1) ** 2).sum()
