"""Linear regression: full-batch descent on the lecture's data

The regression lecture's data: make_regression(n_samples=10000,
n_features=20, n_informative=4, bias=3, noise=1, random_state=1234) with
a column of ones in front (X is 10000 x 21, float64). w starts at zeros,
the loss is the sum of squared errors, SGD with lr 1e-5 on all rows.
Press i: the loss falls from 59888326.63 to 10244.76 at the 30th forward
(least squares: 10105.86). Try --set lr=1e-4: past 9.2e-5 it diverges.
"""

import numpy as np
import torch

from optdbg.scenarios._regression import make_regression

n_samples, n_features, n_informative = 10000, 20, 4
bias, noise = 3, 1
lr = 1e-5

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

w = torch.zeros(n_features + 1, dtype=torch.float64, requires_grad=True)
optimizer = torch.optim.SGD([w], lr=lr)


def forward():
    return ((X @ w - y) ** 2).sum()
