"""Broken: the scenario raises, at load (line 15), an exception whose __str__ raises.

optdbg must refuse to load it with one message naming line 15 and the exception's type
(its text cannot be read, and optdbg says so), exit 2, no traceback of its own.
"""

import torch


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text")


raise Unprintable()
t = torch.tensor([1.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)


def forward():
    return (t**2).sum()
