"""The regression lecture's data without scikit-learn: make_regression's algorithm in NumPy.

scikit-learn documents `make_regression` as: standard-normal features, a ground truth whose
first `n_informative` coefficients are 100 * uniform(0, 1) (the others 0), targets
X @ coef + bias plus normal noise of scale `noise`, then (shuffle=True) the rows and the
feature columns permuted; every draw from one `RandomState(random_state)`, in that order.
"""

import numpy as np


def make_regression(
    n_samples=100, n_features=100, n_informative=10, bias=0.0, noise=0.0, random_state=None
):
    """(X, y) as sklearn.datasets.make_regression(...) returns them (float64)."""
    gen = np.random.RandomState(random_state)
    X = gen.standard_normal(size=(n_samples, n_features))
    coef = np.zeros((n_features, 1))
    coef[:n_informative, :] = 100 * gen.uniform(size=(n_informative, 1))
    y = X @ coef + bias
    if noise > 0.0:
        y += gen.normal(scale=noise, size=y.shape)
    rows = np.arange(n_samples)
    gen.shuffle(rows)
    X, y = X[rows], y[rows]
    columns = np.arange(n_features)
    gen.shuffle(columns)
    X[:, :] = X[:, columns]
    return X, np.squeeze(y)
