"""Broken: forward raises a ValueError (line 14) on every call.

Loading succeeds. optdbg must record each forward as an op error naming the file and
line 14 with the scenario's message; the session carries on (backward then says there is
no loss, step and zero_grad work), and the CLI exits 0.
"""

import torch

t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)

def forward():
    raise ValueError("the scenario's own bug")
