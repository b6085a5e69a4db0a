"""Broken: an integer tensor created with requires_grad=True (line 10).

torch refuses it at load ("Only Tensors of floating point and complex dtype can require
gradients"); optdbg must report torch's message at line 10 and exit 2.
"""

import torch

# an int64 tensor: the literals have no decimal point
t = torch.tensor([1, 2], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)


def forward():
    return (t**2).sum()
