"""Valid but surprising: forward adds a param group to the optimizer (line 17).

The optimizer then steps the new group too, as in a plain loop. The history cannot
restore a state with fewer groups, so optdbg must say that undo is unavailable from then
on (and why), and `u` is refused with that reason, never a crash.
"""

import torch

w = torch.tensor([1.0, 2.0], requires_grad=True)
extra = []
optimizer = torch.optim.SGD([w], lr=0.1)


def forward():
    b = torch.zeros(1, requires_grad=True)
    extra.append(b)
    optimizer.add_param_group({"params": [b]})
    return (w**2).sum() + (b**2).sum()
