"""Broken: the scheduler is ReduceLROnPlateau: its step(metrics) needs a metric (line 12).

optdbg steps the scheduler as plain scheduler.step() after each optimizer step, which
would raise after the parameters moved: optdbg must refuse to load it, naming line 12;
exit 2.
"""

import torch

w = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)
scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)


def forward():
    return (w**2).sum()
