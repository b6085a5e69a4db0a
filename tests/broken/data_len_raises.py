"""Valid: `data` whose __len__ raises.

A batch total is optional: optdbg must run (no batch count shown), never crash on len().
"""

import torch


class Batches:
    def __iter__(self):
        for _ in range(3):
            yield torch.ones(2)

    def __len__(self):
        raise RuntimeError("length unknown until read")


w = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)
data = Batches()


def forward(x):
    return (w * x).sum()
