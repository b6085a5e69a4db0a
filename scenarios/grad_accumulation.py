"""Gradient accumulation on purpose: 4 micro-batches a step

A linear model fit to 128 noisy rows of y = 2*x1 - 3*x2 + 1, fed 8 rows at
a time. One iteration is f b f b f b f b s z (optdbg_config "iteration"):
four backward passes sum into .grad, each loss divided by
accumulation_steps, then one step, as if the batch had 32 rows. i, n and
c follow the pattern and grad-accumulated stays silent; press b twice
more than the pattern says and it warns. Try --set accumulation_steps=2.
"""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

n_rows = 128
micro_batch_size = 8
accumulation_steps = 4
lr = 0.05

gen = torch.Generator().manual_seed(13)
inputs = torch.randn(n_rows, 2, generator=gen)
targets = inputs @ torch.tensor([[2.0], [-3.0]]) + 1 + 0.1 * torch.randn(n_rows, 1, generator=gen)

data = DataLoader(TensorDataset(inputs, targets), batch_size=micro_batch_size)
model = nn.Linear(2, 1)
loss_fn = nn.MSELoss()
optimizer = torch.optim.SGD(model.parameters(), lr=lr)


def forward(batch):
    x, y = batch
    return loss_fn(model(x), y) / accumulation_steps


optdbg_config = {"iteration": "f b " * accumulation_steps + "s z"}
