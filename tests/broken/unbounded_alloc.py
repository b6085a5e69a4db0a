"""Broken: forward allocates without bound (appends 1 MB tensors to a global list).

The growth is paced (about 100 MB/s) so the test can cancel it long before it matters;
optdbg must let the user cancel it (escape in the TUI: OpCancelled, the memory is
reclaimed on reload). SAFETY_CAP only stops a runaway test from filling the machine.
"""

import time

import torch

t = torch.tensor([1.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)
hoard = []
SAFETY_CAP = 2000  # chunks of 1 MB; the test cancels after a few dozen


def forward():
    while len(hoard) < SAFETY_CAP:
        hoard.append(torch.ones(1 << 18))  # 1 MB of float32
        time.sleep(0.01)
    raise MemoryError("SAFETY_CAP reached: the test did not cancel the op")
