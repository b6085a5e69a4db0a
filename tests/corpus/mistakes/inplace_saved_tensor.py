"""An in-place add on a tensor that sigmoid saved for its backward."""
# corpus: ops="f b" repeat=1 expect="inplace-saved-tensor" at=1

import torch

x = torch.randn(8, 3)
w = torch.randn(3, 2, requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)


def forward():
    h = torch.sigmoid(x @ w)
    h += 1  # the mistake: h = h + 1
    return h.sum()
