"""Broken: forward returns a Python float (`.item()`), not a tensor.

optdbg must record each forward as an op error "forward returned a float, not a tensor";
backward has no loss to work on (a usage error); the CLI exits 0.
"""

import torch

w = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)


def forward():
    return ((w - 1) ** 2).sum().item()
