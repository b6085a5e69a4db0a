"""Broken: forward recurses without end (line 15) until Python's recursion limit.

optdbg must record the RecursionError as an op error naming the file (its own stack
survives it), and the session carries on; the CLI exits 0.
"""

import torch

t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)


def forward(depth=0):
    # the default argument keeps forward() callable with no batch
    return forward(depth + 1)
