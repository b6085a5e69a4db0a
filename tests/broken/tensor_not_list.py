"""Broken: the optimizer is given a tensor instead of a list of tensors (line 10).

PyTorch raises a TypeError in the optimizer's constructor; optdbg must refuse to load it
(exit 2, line 10) and say to pass a list, e.g. torch.optim.SGD([t], lr=0.1).
"""

import torch

t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD(t, lr=0.1)


def forward():
    return (t**2).sum()
