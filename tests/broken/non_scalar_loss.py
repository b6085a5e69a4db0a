"""Broken: forward returns the per-element loss (shape (3,)), not a scalar.

The forward itself succeeds with a `loss-not-scalar` warning; optdbg must record that
PyTorch refuses backward ("grad can be implicitly created only for scalar outputs") as
an op error with an explanation (reduce with .sum() or .mean()); the CLI exits 0.
"""

import torch

w = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)


def forward():
    return (w - 1) ** 2
