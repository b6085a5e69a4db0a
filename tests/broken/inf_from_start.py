"""Broken: a parameter is +Inf from the start: the loss is Inf, the grad Inf, then NaN.

PyTorch raises nothing: every op succeeds. optdbg must carry on and write Infinity / NaN
in the JSON; the CLI exits 0.
"""

import torch

w = torch.tensor([float("inf"), 1.0], requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)


def forward():
    return ((w - 1) ** 2).sum()
