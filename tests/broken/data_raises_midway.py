"""Broken: `data` yields two batches, then raises an OSError (a corrupt shard, line 20).

The first two forwards work; optdbg must record the third as an op error naming line 20
with the scenario's message; the session carries on (the next forward starts a new
epoch). The CLI exits 0.
"""

import torch

w = torch.tensor([0.5, -0.5], requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)


class Shards:
    """An iterable whose third batch cannot be read."""

    def __iter__(self):
        yield torch.tensor([1.0, 2.0])
        yield torch.tensor([3.0, 4.0])
        raise OSError("shard 3 is corrupt")


data = Shards()


def forward(batch):
    return ((w * batch).sum() - 1) ** 2
