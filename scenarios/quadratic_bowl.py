"""Quadratic bowl: SGD from (10, 10), lr 0.1

Minimize (t0 - 3)^2 + (t1 + 2)^2 + 8 from t = (10, 10) with plain SGD.
The minimum is 8 at (3, -2). Press f then b: the first gradient is
(14, 24); s moves t to (8.6, 7.6). Keep pressing i and watch the loss
go 201 -> 131.52 -> 87.05 -> ... slowly towards 8.
Press b twice without z to see the gradient double.
Compare learning rates side by side:
optdbg compare quadratic_bowl --set lr=0.1,10,0.25
"""

import torch

lr = 0.1
t = torch.tensor([10.0, 10.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=lr)


def forward():
    return (t[0] - 3) ** 2 + (t[1] + 2) ** 2 + 8
