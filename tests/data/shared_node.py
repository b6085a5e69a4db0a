"""Shared node: y = w * x is used twice, in y * y and in + y.

The graph is a DAG, not a tree: the gradient reaching y is the sum of the two paths
(2y + 1), and the DAG view draws y once with an arrow to each of its consumers.
"""

import torch

w = torch.tensor(2.0, requires_grad=True)
x = torch.tensor(3.0)
optimizer = torch.optim.SGD([w], lr=0.01)


def forward():
    y = w * x
    return y * y + y
