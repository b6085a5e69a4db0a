"""Broken: forward asks for input() (line 15), e.g. to pause between iterations.

optdbg has no prompt: optdbg must not block or read the terminal; forward is an op error
naming line 15, the session carries on; the CLI exits 0.
"""

import torch

t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)


def forward():
    loss = (t**2).sum()
    input("press enter to continue")
    return loss
