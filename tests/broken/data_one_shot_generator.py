"""Broken: `data` is a generator, used up by the first epoch (three batches).

The first three forwards work; optdbg must record the fourth (the next epoch) as an op
error that says `data` is a one-shot iterator and to make it a list or a DataLoader (not
that it is empty). The CLI exits 0.
"""

import torch

w = torch.tensor([0.5, -0.5], requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)
data = (torch.tensor([float(i), 1.0]) for i in range(3))


def forward(batch):
    return ((w * batch).sum() - 1) ** 2
