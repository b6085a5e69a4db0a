"""Gradient clipping in its place but with a max_norm far below the gradient's norm: it binds
on every step and acts as a smaller learning rate."""
# corpus: expect="clip-order" at=59

import torch
from torch import nn

torch.manual_seed(0)
X = torch.randn(32, 4)
y = 100 * X.sum(1, keepdim=True)
model = nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
for _ in range(25):
    loss = nn.functional.mse_loss(model(X), y)
    optimizer.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1e-3)  # the mistake: max_norm too small
    optimizer.step()
