"""AdamW with weight-decay groups, as nanoGPT and most recipes configure it: 2-d weights
decay (0.1), biases and LayerNorm weights do not (weight_decay 0). A small classifier on
three Gaussian blobs, mini-batches of 30."""
# corpus: ops="f b s z" repeat=40

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

gen = torch.Generator().manual_seed(0)
labels = torch.arange(3).repeat_interleave(100)
centers = torch.tensor([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
points = centers[labels] + 0.8 * torch.randn(300, 2, generator=gen)
data = DataLoader(TensorDataset(points, labels), batch_size=30, shuffle=True)

model = nn.Sequential(nn.Linear(2, 32), nn.LayerNorm(32), nn.GELU(), nn.Linear(32, 3))
loss_fn = nn.CrossEntropyLoss()
decay = [p for p in model.parameters() if p.dim() >= 2]
no_decay = [p for p in model.parameters() if p.dim() < 2]
optimizer = torch.optim.AdamW(
    [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
    lr=3e-3,
)
