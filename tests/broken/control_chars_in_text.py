"""Title with \x1b[2J\x1b]0;pwned\x07 escape codes \x1b[31mred\x1b[0m.

Valid, but hostile text: the docstring, a parameter name and forward's error message
hold terminal escape sequences. optdbg must print them escaped, never raw control codes.
"""

import torch

globals()["w\x1b[31m"] = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([globals()["w\x1b[31m"]], lr=0.1)


def forward():
    raise ValueError("bad \x1b[2J\x1b]0;title\x07 value \r overwritten")
