"""Broken: supervised form (model, loss_fn, data) whose batches are not (X, y) pairs.

Loading succeeds; optdbg must record forward as an op error saying each batch must be a
pair (X, y); the CLI exits 0.
"""

import torch

model = torch.nn.Linear(2, 1)
loss_fn = torch.nn.MSELoss()
data = [torch.ones(4, 2), torch.zeros(4, 2)]  # X only, no y
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
