"""Linear regression: mini-batches in a fixed shuffled order

The linear_regression data fed batch_size rows at a time, as the lecture
loops: one shuffle of the row indices with np.random.default_rng(1234),
the same batch order every epoch. The loss is the batch's sum of squared
errors, so lr scales with the batch size. Press i and watch epoch/batch;
v reports the loss on all 10000 rows, the number the lecture compares.
Try --set batch_size=10 --set lr=0.005, or compare several batch sizes.
"""

import numpy as np
import torch

from optdbg.scenarios._regression import make_regression

n_samples, n_features, n_informative = 10000, 20, 4
bias, noise = 3, 1
batch_size = 100
lr = 1e-3

features, targets = make_regression(
    n_samples=n_samples,
    n_features=n_features,
    n_informative=n_informative,
    bias=bias,
    noise=noise,
    random_state=1234,
)
X = torch.tensor(np.hstack([np.ones((n_samples, 1)), features]))
y = torch.tensor(targets)

order = np.arange(n_samples)
np.random.default_rng(1234).shuffle(order)
data = [
    (X[order[i : i + batch_size]], y[order[i : i + batch_size]])
    for i in range(0, n_samples, batch_size)
]

w = torch.zeros(n_features + 1, dtype=torch.float64, requires_grad=True)
optimizer = torch.optim.SGD([w], lr=lr)


def forward(batch):
    X_batch, y_batch = batch
    return ((X_batch @ w - y_batch) ** 2).sum()


def evaluate():
    return {"loss": ((X @ w - y) ** 2).sum().item()}
