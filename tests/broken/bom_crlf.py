"""Valid: a UTF-8 file with a byte-order mark and CRLF line endings, as Windows editors save.

Python runs it: optdbg must load it and run (title read from the docstring).
"""

import torch

t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)


def forward():
    return (t**2).sum()
