"""Broken: a module whose named_modules() raises once the file has run (line 23).

The file runs to the end (`python` would not complain), but optdbg reads the model's
modules and parameters when it starts the session. optdbg must refuse to load it: exit 2,
line 23 (the raise), the message and what it needs; no traceback of optdbg's own.
"""

import torch
from torch import nn


class Weird(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)
        self.loaded = False

    def forward(self, x):
        return self.lin(x)

    def named_modules(self, *args, **kwargs):
        if self.loaded:
            raise RuntimeError("named_modules is broken")
        return super().named_modules(*args, **kwargs)


model = Weird()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
model.loaded = True
x, y = torch.ones(4, 2), torch.zeros(4, 1)


def forward():
    return ((model(x) - y) ** 2).mean()
