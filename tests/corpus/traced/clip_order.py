"""Gradient clipping after optimizer.step(): the update already used the unclipped
gradient, and zero_grad discards the clipped one."""
# corpus: expect="clip-order" at=3

import torch
from torch import nn

torch.manual_seed(0)
X = torch.randn(32, 4)
y = X.sum(1, keepdim=True)
model = nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)
for _ in range(3):
    loss = nn.functional.mse_loss(model(X), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # the mistake: between backward and step
