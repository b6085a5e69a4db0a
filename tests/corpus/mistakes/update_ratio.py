"""A learning rate far too low for a network: SGD lr 1e-7 moves each weight by about 1e-8
of its norm per step."""
# corpus: ops="f b s z" repeat=25 expect="update-ratio" at=78

import torch
from torch import nn

X = torch.randn(128, 8)
y = torch.sin(X.sum(1, keepdim=True))
data = [(X, y)]
model = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 1))
loss_fn = nn.MSELoss()
optimizer = torch.optim.SGD(model.parameters(), lr=1e-7)
