"""Broken: forward (line 14) returns a complex scalar loss.

backward() of a complex loss is refused by PyTorch. optdbg must refuse the forward itself
(a loss must be a real scalar), keep nothing of it (no loss, no graph, counters as they
were), and `u` afterwards works.
"""

import torch

w = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)


def forward():
    return (w * (1 + 2j)).sum()
