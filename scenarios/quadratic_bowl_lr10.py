"""Quadratic bowl with lr 10: divergence

The same bowl, (t0 - 3)^2 + (t1 + 2)^2 + 8 from (10, 10), but SGD with
lr 10. Each step overshoots the minimum and lands 19 times farther away
on the other side. Press i repeatedly and watch t flip sign and grow;
the loss is inf from iteration 16; t itself overflows later, then nan.
Compare with quadratic_bowl (lr 0.1) and quadratic_bowl_lr025.
"""

import torch

lr = 10
t = torch.tensor([10.0, 10.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=lr)


def forward():
    return (t[0] - 3) ** 2 + (t[1] + 2) ** 2 + 8
