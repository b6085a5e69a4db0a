"""Classifier with Adam: three blobs, mini-batches

300 points in three Gaussian blobs (100 per class), a 2 -> 16 -> 3 MLP
with ReLU, CrossEntropyLoss and Adam (lr 0.01) on shuffled mini-batches
of 32 (10 batches per epoch, the last one has 12 points).
Press f, b, s and look at Adam's state for each parameter: step, exp_avg,
and exp_avg_sq. Unlike SGD, early steps move each weight by about lr,
whatever its gradient size. Press i: the loss falls within a few epochs.
"""

import math

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

N_PER_CLASS, N_CLASSES = 100, 3

gen = torch.Generator().manual_seed(0)
angles = torch.arange(N_CLASSES) * (2 * math.pi / N_CLASSES)
centers = 2.0 * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
labels = torch.arange(N_CLASSES).repeat_interleave(N_PER_CLASS)
points = centers[labels] + 0.8 * torch.randn(len(labels), 2, generator=gen)

data = DataLoader(
    TensorDataset(points, labels),
    batch_size=32,
    shuffle=True,
    generator=torch.Generator().manual_seed(0),
)

model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, N_CLASSES))
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
