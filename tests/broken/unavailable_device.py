"""Broken: the parameter is created on CUDA, which this machine does not have (line 10).

torch raises while loading ("Torch not compiled with CUDA enabled" or "no NVIDIA
driver"); optdbg must refuse to load it with that message, naming line 10, exit 2.
"""

import torch

device = torch.device("cuda")
t = torch.zeros(2, device=device, requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)


def forward():
    return (t**2).sum()
