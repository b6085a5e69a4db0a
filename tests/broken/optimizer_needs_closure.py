"""Broken: the optimizer is LBFGS: its step(closure) evaluates the loss itself (line 10).

optdbg performs step as plain optimizer.step(), so every step would fail: optdbg must
refuse to load it, naming line 10 and suggesting SGD or Adam; exit 2.
"""

import torch

w = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.LBFGS([w])


def forward():
    return (w**2).sum()
