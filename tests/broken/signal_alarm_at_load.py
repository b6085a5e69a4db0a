"""Valid, but reaches for the process: at load it installs a SIGALRM handler that raises
and arms a one-second alarm (line 18), and lowers the recursion limit to 80 (line 19).

optdbg must restore its own signal handlers, timers and recursion limit around scenario
code: the alarm never fires in optdbg, deep ops still work, and the ops run normally.
"""

import signal
import sys

import torch


def ring(signum, frame):
    raise RuntimeError("alarm rang inside optdbg")


signal.signal(signal.SIGALRM, ring)
signal.setitimer(signal.ITIMER_REAL, 1.0)
sys.setrecursionlimit(80)
t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)


def forward():
    return (t**2).sum()
