"""Broken: `data` is an empty list, so there is never a batch to feed forward.

Loading succeeds; optdbg must record every forward as an op error "`data` yielded no
batches"; the CLI exits 0.
"""

import torch

w = torch.tensor([0.5, -0.5], requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)
data = []


def forward(batch):
    return ((w * batch).sum() - 1) ** 2
