"""Broken: the optimizer gets an empty parameter list (line 10).

PyTorch raises "optimizer got an empty parameter list"; optdbg must refuse to load it
(exit 2, line 10) and say to give the optimizer at least one tensor.
"""

import torch

t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([], lr=0.1)


def forward():
    return (t**2).sum()
