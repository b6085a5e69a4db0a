"""Broken: forward raises a message full of square brackets (line 14).

The message is text: optdbg must show every bracket as written,
"expected Tensor for [weights], got [Tensor] at [/data/shard-3]".
"""

import torch

t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)


def forward():
    raise TypeError("expected Tensor for [weights], got [Tensor] at [/data/shard-3] [/]")
