"""Valid, but not copyable: the LambdaLR's schedule is an object holding an open file.

The history copies the scheduler's state_dict() for undo, and an open file cannot be
copied. optdbg must load it and run every op (the values are a plain loop's), with undo
disabled and a message saying why; `u` is then refused with that reason, never a crash.
"""

import os

import torch


class Schedule:
    def __init__(self):
        self.log = open(os.devnull, "w")  # noqa: SIM115

    def __call__(self, epoch):
        self.log.write(f"{epoch}\n")
        return 0.9**epoch


t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)
scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, Schedule())


def forward():
    return (t**2).sum()
