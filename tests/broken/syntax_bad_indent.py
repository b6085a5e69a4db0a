"""Broken: an IndentationError (another kind of syntax error) in forward, line 13.

optdbg must refuse to load it: exit 2 naming the file and line 13, and no traceback.
"""

import torch

t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)

def forward():
    loss = (t**2).sum()
        return loss
