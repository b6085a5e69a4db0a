"""Probabilities into CrossEntropyLoss: the model ends with nn.Softmax, and the loss applies
log_softmax again."""
# corpus: ops="f b s z" repeat=5 expect="softmax-before-ce" at=0

import torch
from torch import nn

X = torch.randn(64, 4)
y = (X.sum(1) > 0).long()
data = [(X, y)]
model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2), nn.Softmax(dim=1))
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
