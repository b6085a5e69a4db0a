"""Valid: `data` whose __len__ returns 10**30 (more than len() can return).

A batch total is optional: optdbg must run (no batch count shown), never crash on len().
"""

import torch


class Batches:
    def __iter__(self):
        for _ in range(3):
            yield torch.ones(2)

    def __len__(self):
        return 10**30


w = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)
data = Batches()


def forward(x):
    return (w * x).sum()
