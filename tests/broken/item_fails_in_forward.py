"""Broken: forward returns a loss whose value cannot be read (.item() fails: a meta tensor).

optdbg must record the forward as an op error and keep nothing of it: the previous loss,
the counters and the data position stay as they were ("state unchanged" is true).
"""

import torch

t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)
calls = []


def forward():
    calls.append(1)
    if len(calls) == 1:
        return (t**2).sum()
    return torch.zeros((), device="meta", requires_grad=True)
