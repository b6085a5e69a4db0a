"""Broken: `optimizer` is a module (nn.Linear), not a torch.optim.Optimizer (line 9).

optdbg must refuse to load it: exit 2, "`optimizer` is a Linear, not a
torch.optim.Optimizer", naming line 9.
"""

import torch

optimizer = torch.nn.Linear(2, 1)


def forward():
    return optimizer(torch.ones(2)).sum()
