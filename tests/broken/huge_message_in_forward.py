"""Broken: forward raises an error whose message is 200 kB (line 14).

optdbg must record the op error with the message cut to a readable length (saying how much
was cut), naming line 14, not print 200 kB.
"""

import torch

t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)


def forward():
    raise ValueError("y" * 200_000)
