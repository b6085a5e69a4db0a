"""Broken: the file calls sys.exit(3) while loading (line 11), as a script might.

optdbg must not exit with the scenario's status: it refuses to load it with "the
scenario called sys.exit(3) while loading", line 11, exit 2.
"""

import sys

import torch

sys.exit(3)
t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)
