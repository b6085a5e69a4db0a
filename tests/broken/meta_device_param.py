"""Broken: the parameter lives on the `meta` device (a shape, no data), line 10.

An optimizer accepts meta tensors, but there is nothing to show or compute: optdbg must
refuse to load it with "parameter `w` is on the meta device", naming line 10, exit 2
(not crash later when it copies the values out).
"""

import torch

w = torch.zeros(3, device="meta", requires_grad=True)
X = torch.ones(4, 3)
optimizer = torch.optim.SGD([w], lr=0.1)


def forward():
    return (X @ w).sum()
