"""Learning-rate schedule: exponential decay on the bowl

The quadratic bowl (t0 - 3)^2 + (t1 + 2)^2 + 8 from (10, 10), SGD with
lr 0.1 and an ExponentialLR scheduler (gamma 0.9) stepped after every
optimizer step. Press i (or s) and watch the learning rate shown change
step by step: 0.1 -> 0.09 -> 0.081 -> ... The steps shrink as the lr
decays, so t stops short of the minimum (3, -2): press c and after 85
iterations lr-schedule-odd says the lr has been about zero (below 1e-3 of
its start) for 20 steps; after about 140 the plateau warning names the
stall (lr near 5e-8).
"""

import torch

t = torch.tensor([10.0, 10.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)
scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)


def forward():
    return (t[0] - 3) ** 2 + (t[1] + 2) ** 2 + 8
