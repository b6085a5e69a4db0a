"""Valid, but noisy: the scenario rebinds sys.stdout to the process's real stdout and
prints from forward and writes to file descriptor 1 directly.

optdbg run --json must keep its records on a stream the scenario cannot reach: stdout
holds only JSON lines; the scenario's text goes to stderr.
"""

import os
import sys

import torch

sys.stdout = sys.__stdout__
t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)


def forward():
    print("\x1b]0;title set by the scenario\x07 noise on stdout")
    os.write(1, b"raw noise on fd 1\n")
    return (t**2).sum()
