"""A training script that creates its Adam inside the loop: the moments start over at every
iteration."""
# corpus: expect="optimizer-recreated" at=5

import torch
from torch import nn

torch.manual_seed(0)
X = torch.randn(32, 4)
y = X.sum(1, keepdim=True)
model = nn.Linear(4, 1)
for _ in range(4):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)  # the mistake: before the loop
    loss = nn.functional.mse_loss(model(X), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
