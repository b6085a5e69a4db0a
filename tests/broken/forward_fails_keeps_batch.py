"""Broken once: the second forward raises (line 19) after receiving its batch.

In optdbg a failed forward must not consume the batch: the next forward gets that batch
(batch 2, not batch 3), and the data position, counters and random state are unchanged.
"""

import torch

w = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)
data = [torch.full((2,), float(i)) for i in range(1, 5)]
seen = []


def forward(x):
    seen.append(float(x[0]))
    noise = torch.rand(1)
    if len(seen) == 2:
        raise ValueError("flaky once")
    return (w * x).sum() + 0 * noise.sum()
