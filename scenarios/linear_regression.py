"""Linear regression: full-batch gradient descent

A synthetic regression problem in the style of sklearn's make_regression:
10000 rows, 20 standard-normal features of which 4 are informative,
bias 3, noise 1, plus an intercept column of ones (X is 10000 x 21).
w (21 weights, the last one the intercept) starts at zero; the loss is
the sum of squared errors; SGD with lr 1e-5 on the whole data set.
Press i repeatedly: the loss drops by about four orders of magnitude in
30 steps, and only the 4 informative weights and the intercept grow.
"""

import numpy as np
import torch

N_ROWS, N_FEATURES, N_INFORMATIVE = 10000, 20, 4
BIAS, NOISE = 3.0, 1.0

rng = np.random.default_rng(0)
features = rng.standard_normal((N_ROWS, N_FEATURES))
true_coef = np.zeros(N_FEATURES)
true_coef[:N_INFORMATIVE] = 100 * rng.uniform(size=N_INFORMATIVE)
targets = features @ true_coef + BIAS + NOISE * rng.standard_normal(N_ROWS)

X = torch.cat([torch.tensor(features, dtype=torch.float32), torch.ones(N_ROWS, 1)], dim=1)
y = torch.tensor(targets, dtype=torch.float32)

w = torch.zeros(N_FEATURES + 1, requires_grad=True)
optimizer = torch.optim.SGD([w], lr=1e-5)


def forward():
    return ((X @ w - y) ** 2).sum()
