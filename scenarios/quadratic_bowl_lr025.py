"""Quadratic bowl with lr 0.25: fast convergence

The same bowl, (t0 - 3)^2 + (t1 + 2)^2 + 8 from (10, 10), but SGD with
lr 0.25. Each step halves the distance to the minimum (3, -2): press i
and watch t go (10, 10) -> (6.5, 4) -> (4.75, 1) -> ...
It is within 1e-4 of (3, -2) after 17 iterations, exactly there after 28.
Compare with quadratic_bowl (lr 0.1) and quadratic_bowl_lr10.
"""

import torch

lr = 0.25
t = torch.tensor([10.0, 10.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=lr)


def forward():
    return (t[0] - 3) ** 2 + (t[1] + 2) ** 2 + 8
