"""Deep narrow MLP: 200 x (Linear(16, 16) - Tanh), about 1,000 graph nodes

A graph-size benchmark rather than a training problem: each Linear adds an addmm node,
the transpose of its weight and two leaves (weight, bias), each Tanh one node, so the
loss's autograd graph has about 1,000 nodes. Batch 8, MSE to zero, plain SGD.
"""

import torch
from torch import nn

DEPTH, WIDTH = 200, 16

X = torch.randn(8, WIDTH)
target = torch.zeros(8, WIDTH)
model = nn.Sequential(*(m for _ in range(DEPTH) for m in (nn.Linear(WIDTH, WIDTH), nn.Tanh())))
loss_fn = nn.MSELoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)


def forward():
    return loss_fn(model(X), target)
