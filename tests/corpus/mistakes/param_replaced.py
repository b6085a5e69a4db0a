"""Clamping a weight by rebinding it: w = w.clamp(...) in forward makes `w` a non-leaf
result; the optimizer keeps updating the original tensor."""
# corpus: ops="f b s z" repeat=1 expect="param-replaced" at=0

import torch

x = torch.linspace(-1, 1, 20)
y = 0.5 * x
w = torch.tensor(2.0, requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)


def forward():
    global w
    w = w.clamp(-1.0, 1.0)  # the mistake: with torch.no_grad(): w.clamp_(-1, 1)
    return ((w * x - y) ** 2).mean()
