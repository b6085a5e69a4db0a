"""Valid, but leaves work behind: the scenario starts a non-daemon thread that never ends.

`optdbg run` must still exit when its ops are done (saying that it ended the scenario's
thread), never hang.
"""

import threading

import torch

stop = threading.Event()
threading.Thread(target=stop.wait, name="scenario-worker").start()
t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)


def forward():
    return (t**2).sum()
