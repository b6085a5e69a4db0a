"""MSELoss between an output of shape (N, 1) and a target of shape (N,): the loss compares
every prediction with every target (PyTorch only warns)."""
# corpus: ops="f b s z" repeat=5 expect="loss-broadcast" at=0

import warnings

import torch
from torch import nn

warnings.filterwarnings("ignore", "Using a target size")
X = torch.randn(32, 3)
y = X @ torch.tensor([1.0, -2.0, 0.5]) + 0.1  # shape (32,)
data = [(X, y)]
model = nn.Linear(3, 1)  # output (32, 1)
loss_fn = nn.MSELoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
