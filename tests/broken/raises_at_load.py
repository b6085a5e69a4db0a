"""Broken: an exception while the file is being executed (a ZeroDivisionError, line 9).

optdbg must refuse to load it: exit 2 with `FILE:9: ZeroDivisionError while loading the
scenario: division by zero`, and no traceback.
"""

import torch

scale = 1 / 0
t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)


def forward():
    return (t * scale).sum()
