"""Broken: the file asks for input() while loading (line 9).

optdbg runs scenarios without a prompt, so optdbg must not block on input() (nor read
the terminal): it raises, and the load fails with a clear message, line 9, exit 2.
"""

import torch

lr = float(input("learning rate? "))
t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=lr)


def forward():
    return (t**2).sum()
