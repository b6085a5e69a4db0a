"""Broken: not UTF-8 (a Latin-1 é in this docstring, line 1).

optdbg must refuse to load it: exit 2, "the file is not UTF-8 text", line 1.
"""

import torch

t = torch.tensor([1.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)


def forward():
    return (t**2).sum()
