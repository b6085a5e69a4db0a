"""Broken: forward never returns (an endless Python loop, lines 16-17).

optdbg must not freeze: in the TUI the op runs off the UI thread, the status shows the
elapsed time and escape cancels it (an OpCancelled op error naming the loop); the
session stays usable. The headless CLI would wait forever, like Python would.
"""

import torch

t = torch.tensor([1.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)


def forward():
    n = 0
    while True:
        n += 1
    return (t * n).sum()
