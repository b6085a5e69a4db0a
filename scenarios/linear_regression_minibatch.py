"""Linear regression: mini-batches from a shuffled DataLoader

The linear_regression data (10000 rows, 20 features, 4 informative,
bias 3, noise 1, intercept column) fed 100 rows at a time by a shuffled
DataLoader: one epoch is 100 batches. Watch the epoch/batch counters as
you press i; the loss is now that of one batch, so it is noisy.
The loss is a sum over the batch, so its gradient is 100x smaller than
the full-batch one: lr is scaled up by 10000/100 to 1e-3 to match.
"""

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

N_ROWS, N_FEATURES, N_INFORMATIVE = 10000, 20, 4
BIAS, NOISE = 3.0, 1.0
BATCH_SIZE = 100

rng = np.random.default_rng(0)
features = rng.standard_normal((N_ROWS, N_FEATURES))
true_coef = np.zeros(N_FEATURES)
true_coef[:N_INFORMATIVE] = 100 * rng.uniform(size=N_INFORMATIVE)
targets = features @ true_coef + BIAS + NOISE * rng.standard_normal(N_ROWS)

X = torch.cat([torch.tensor(features, dtype=torch.float32), torch.ones(N_ROWS, 1)], dim=1)
y = torch.tensor(targets, dtype=torch.float32)

data = DataLoader(
    TensorDataset(X, y),
    batch_size=BATCH_SIZE,
    shuffle=True,
    generator=torch.Generator().manual_seed(0),
)

w = torch.zeros(N_FEATURES + 1, requires_grad=True)
optimizer = torch.optim.SGD([w], lr=1e-5 * N_ROWS / BATCH_SIZE)


def forward(batch):
    X_batch, y_batch = batch
    return ((X_batch @ w - y_batch) ** 2).sum()
