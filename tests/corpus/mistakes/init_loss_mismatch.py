"""Unnormalized inputs (pixel values 0..255) into a classifier: the first loss is far above
ln(10), the model starts confidently wrong."""
# corpus: ops="f b s z" repeat=3 expect="init-loss-mismatch" at=0

import torch
from torch import nn

gen = torch.Generator().manual_seed(0)
X = torch.randint(0, 256, (64, 64), generator=gen).float()  # forgot X / 255
y = torch.randint(0, 10, (64,), generator=gen)
data = [(X, y)]
model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
