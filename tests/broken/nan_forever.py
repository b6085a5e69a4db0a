"""Valid: every loss is NaN from the first forward on.

Running until a condition that never holds (`optdbg run --until "loss < 0"`, the TUI's c)
must stop once the state is persistently non-finite, saying so, not run 1,000 iterations.
"""

import torch

w = torch.tensor([float("nan"), 1.0], requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)


def forward():
    return (w**2).sum()
