"""Broken: forward returns a detached loss (no grad_fn).

forward succeeds; optdbg must record that backward is refused by PyTorch ("element 0 of
tensors does not require grad and does not have a grad_fn"), recorded with an
explanation; the CLI exits 0.
"""

import torch

w = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)


def forward():
    return ((w - 3) ** 2).sum().detach()
