"""Broken: the supervised form gets batches that are dicts {"x": X, "y": y}.

loss_fn(model(X), y) needs pairs: optdbg must say a batch must be a pair (X, y), name
the dict's keys and how to fix it (a forward(batch) picking the keys), never unpack the
key strings.
"""

import torch
from torch import nn

model = nn.Linear(2, 1)
loss_fn = nn.MSELoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
data = [{"x": torch.ones(4, 2), "y": torch.zeros(4, 1)}]
