"""Broken: no `optimizer` is defined (only the tensor and forward).

optdbg must refuse to load it: exit 2, "no `optimizer` is defined", with the fix.
"""

import torch

t = torch.tensor([1.0, 2.0], requires_grad=True)


def forward():
    return (t**2).sum()
