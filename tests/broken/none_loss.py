"""Broken: forward forgets to return the loss (returns None).

optdbg must record each forward as an op error "forward returned a NoneType, not a
tensor"; the CLI exits 0 and the session stays usable.
"""

import torch

w = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)


def forward():
    loss = ((w - 1) ** 2).sum()  # noqa: F841 - the bug: no return
