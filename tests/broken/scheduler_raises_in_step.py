"""Broken: a OneCycleLR scheduler for 2 steps (line 13), stepped a third time.

The third step's optimizer.step() moves the parameters, then scheduler.step() raises
("Tried to step 3 times"), exactly as in a plain loop. optdbg must record the error,
say that the parameters have moved (not that the state is unchanged), and hold the same
values as a plain loop; the CLI exits 0.
"""

import torch

w = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=2)


def forward():
    return (w**2).sum()
