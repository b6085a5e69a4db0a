"""Deep narrow MLP: 60 x (Linear(4, 4) - Tanh), a graph of a little over 300 nodes.

Big enough that the graph panel opens it folded by module (the tree and the DAG alike).
"""

import torch
from torch import nn

X = torch.randn(8, 4)
target = torch.zeros(8, 4)
model = nn.Sequential(*(m for _ in range(60) for m in (nn.Linear(4, 4), nn.Tanh())))
loss_fn = nn.MSELoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)


def forward():
    return loss_fn(model(X), target)
