"""Broken: forward(batch) takes a batch, but there is no `data` to feed it (line 13).

optdbg must refuse to load it: exit 2, "`forward` takes 1 argument(s) but there is no
`data` to feed it", naming the line of forward.
"""

import torch

t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)


def forward(batch):
    return ((t - batch) ** 2).sum()
