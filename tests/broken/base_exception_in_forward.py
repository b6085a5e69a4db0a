"""Broken: forward raises a BaseException subclass (line 19), not an Exception.

optdbg must record it as the forward's op error (type Abort, line 19), the state
unchanged, and carry on; the CLI exits 0.
"""

import torch


class Abort(BaseException):
    pass


t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)


def forward():
    raise Abort("stop everything")
