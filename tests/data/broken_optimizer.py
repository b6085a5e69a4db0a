"""A broken scenario for the load-error screen: the tensor is given instead of a list."""

import torch

t = torch.tensor([10.0, 10.0], requires_grad=True)
optimizer = torch.optim.SGD(t, lr=0.1)


def forward():
    return (t[0] - 3) ** 2 + (t[1] + 2) ** 2 + 8
