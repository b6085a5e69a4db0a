"""Broken: forward computes the loss under torch.no_grad(), so it has no graph.

forward succeeds; optdbg must record that backward is refused by PyTorch ("does not
require grad and does not have a grad_fn"), recorded with an explanation; the CLI exits
0.
"""

import torch

w = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)


def forward():
    with torch.no_grad():
        return ((w - 3) ** 2).sum()
