"""Train and test: a classifier with test loss and accuracy

Three overlapping Gaussian blobs in 2-D: 300 points to train on, 150 held
out as test_data. A 2 -> 32 -> 32 -> 3 MLP with ReLU and dropout,
CrossEntropyLoss, SGD. Press i, then v: evaluate runs the lecture's
test_loop (model.eval(), torch.no_grad(), mean batch loss, argmax(1) == y)
and puts the model back in training mode. c evaluates after each epoch,
so the loss panel shows test beside training loss. Try
--set optimizer_name='"Adam"' --set lr=0.01, or other batch sizes.
"""

import math

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

n_train, n_test, n_classes = 300, 150, 3
spread = 1.2
batch_size = 32
lr = 0.1
optimizer_name = "SGD"
dropout = 0.2

gen = torch.Generator().manual_seed(2)
angles = torch.arange(n_classes) * (2 * math.pi / n_classes)
centers = 2.0 * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
labels = torch.randint(n_classes, (n_train + n_test,), generator=gen)
points = centers[labels] + spread * torch.randn(n_train + n_test, 2, generator=gen)

data = DataLoader(
    TensorDataset(points[:n_train], labels[:n_train]),
    batch_size=batch_size,
    shuffle=True,
    generator=torch.Generator().manual_seed(2),
)
test_data = DataLoader(TensorDataset(points[n_train:], labels[n_train:]), batch_size=batch_size)

model = nn.Sequential(
    nn.Linear(2, 32),
    nn.ReLU(),
    nn.Dropout(dropout),
    nn.Linear(32, 32),
    nn.ReLU(),
    nn.Linear(32, n_classes),
)
loss_fn = nn.CrossEntropyLoss()
optimizer = getattr(torch.optim, optimizer_name)(model.parameters(), lr=lr)

optdbg_config = {"evaluate_every": "epoch"}
