"""Broken: forward reuses a tensor in place after the graph saved it (DCGAN's label.fill_).

backward fails with "modified by an inplace operation". No step ran: optdbg must
blame the in-place change in forward in its explanation, not step().
"""

import torch

w = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)
label = torch.ones(2)


def forward():
    a = w * 2
    b = a.sigmoid()
    out = (b * label).sum()
    b.mul_(0.5)
    return out
