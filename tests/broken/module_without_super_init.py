"""Broken: an nn.Module subclass whose __init__ (line 13) forgot super().__init__().

It holds a plain tensor, so creating it works, but it has no parameter registry: nothing
can list its parameters. optdbg must refuse to load it: exit 2, line 13 (the __init__),
and the fix (call super().__init__() first). No traceback of optdbg's own.
"""

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        self.w = torch.ones(2, requires_grad=True)  # super().__init__() is missing

    def forward(self, x):
        return (self.w * x).sum()


model = Net()
optimizer = torch.optim.SGD([model.w], lr=0.1)


def forward():
    return (model.w * 2).sum()
