"""Gradient clipping in its place, between backward and step, with a max_norm that binds
only on the first steps."""
# corpus: expect="" at=none

import torch
from torch import nn

torch.manual_seed(0)
X = torch.randn(32, 4)
y = X.sum(1, keepdim=True)
model = nn.Linear(4, 1)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
for _ in range(60):
    loss = nn.functional.mse_loss(model(X), y)
    optimizer.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 10.0)
    optimizer.step()
