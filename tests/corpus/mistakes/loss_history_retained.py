"""The PyTorch FAQ's memory leak: the running loss kept as a tensor (total = total + loss)
holds every iteration's graph."""
# corpus: ops="f b s z" repeat=4 expect="loss-history-retained" at=4

import torch

t = torch.tensor([10.0, 10.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)
total = 0.0


def forward():
    global total
    loss = (t[0] - 3) ** 2 + (t[1] + 2) ** 2 + 8
    total = total + loss  # the mistake: total += loss.item()
    return loss
