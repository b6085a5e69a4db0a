"""Large but valid: one parameter of 10^8 float32 elements (400 MB).

Every op works; optdbg must summarize the tensor (shape, mean, std, min, max, norm)
instead of printing 10^8 numbers, in the JSON and in the UI; the CLI exits 0.
"""

import torch

w = torch.zeros(10**8, requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.5)


def forward():
    return (w.sum() - 1.0) ** 2
