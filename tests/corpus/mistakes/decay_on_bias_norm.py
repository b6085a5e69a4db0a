"""AdamW over model.parameters(): its default weight_decay (0.01) decays the biases and
LayerNorm weights too."""
# corpus: ops="f b s z" repeat=5 expect="decay-on-bias-norm" at=0

import torch
from torch import nn

X = torch.randn(64, 4)
y = (X.sum(1) > 0).long()
data = [(X, y)]
model = nn.Sequential(nn.Linear(4, 16), nn.LayerNorm(16), nn.ReLU(), nn.Linear(16, 2))
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
