"""An exponential schedule with gamma above 1: the learning rate grows 20% a step."""
# corpus: ops="f b s z" repeat=16 expect="lr-schedule-odd" at=50

import torch

t = torch.tensor([10.0, 10.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=1e-3)
scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=1.2)


def forward():
    return (t[0] - 3) ** 2 + (t[1] + 2) ** 2 + 8
