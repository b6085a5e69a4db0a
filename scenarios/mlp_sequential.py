"""Small network: nn.Sequential(Linear, Sigmoid, Linear)

A 2 -> 3 -> 2 network with a sigmoid in the middle, trained with MSELoss
on 8 fixed points (one full batch per epoch) by SGD, lr 0.5.
model.parameters() hands all four tensors (model.0.weight, model.0.bias,
model.2.weight, model.2.bias) to the optimizer. Press f and read the
graph: AddmmBackward0 and TBackward0 for each Linear, SigmoidBackward0,
MseLossBackward0 at the top. Press i repeatedly to watch the loss fall.
"""

import torch
from torch import nn

model = nn.Sequential(nn.Linear(2, 3), nn.Sigmoid(), nn.Linear(3, 2))
loss_fn = nn.MSELoss()

# Inputs on a square around the origin; targets (x0 * x1, (x0 + x1) / 2).
X = torch.tensor(
    [
        [-1.0, -1.0],
        [-1.0, 0.0],
        [-1.0, 1.0],
        [0.0, -1.0],
        [0.0, 1.0],
        [1.0, -1.0],
        [1.0, 0.0],
        [1.0, 1.0],
    ]
)
y = torch.stack([X[:, 0] * X[:, 1], (X[:, 0] + X[:, 1]) / 2], dim=1)
data = [(X, y)]

optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
