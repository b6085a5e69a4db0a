"""Broken: forward raises KeyboardInterrupt itself (line 14); nobody pressed Ctrl-C.

optdbg must record it as the scenario's op error (type KeyboardInterrupt, line 14) and
carry on with the next ops, not end the run as if the user had interrupted it.
"""

import torch

t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)


def forward():
    raise KeyboardInterrupt
