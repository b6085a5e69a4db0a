"""Valid: the loss is the leaf parameter itself (forward returns `w`).

backward works (w.grad = 1). Its graph is a single leaf: optdbg export must draw that
node, not say that the loss does not require grad.
"""

import torch

w = torch.tensor(3.0, requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)


def forward():
    return w
