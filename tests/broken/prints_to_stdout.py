"""Noisy: the scenario prints at load and in every forward, as training code often does.

Nothing is broken, but optdbg must keep its own output clean: `optdbg run --json` writes
only JSON Lines on stdout (the scenario's prints go elsewhere, e.g. stderr), and the TUI's
screen is not scribbled over. The CLI exits 0.
"""

import torch

t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)
print("scenario loaded")


def forward():
    loss = (t**2).sum()
    print("loss is", loss.item())
    return loss
