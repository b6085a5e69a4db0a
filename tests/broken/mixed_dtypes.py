"""Broken: a float64 parameter multiplied (matmul) by float32 data (line 16).

Loading succeeds; optdbg must record that PyTorch refuses forward (a dtype mismatch in
the matmul), recorded as an op error naming line 16; the CLI exits 0.
"""

import torch

w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
X = torch.ones(4, 3)  # float32
y = torch.ones(4)
optimizer = torch.optim.SGD([w], lr=0.1)


def forward():
    pred = X @ w
    return ((pred - y) ** 2).mean()
