"""One parameter of 10^8 elements (400 MB), Adam: the memory and latency benchmark

A single float32 vector of 100,000,000 elements pulled towards 1 by Adam (lr 0.01) with the
loss mean((w - 1)^2). Its grad and Adam's two moments are as big again, so a plain loop
holds about 1.6 GB before any temporary. The environment variables OPTDBG_BENCH_DEVICE
(default cpu) and OPTDBG_BENCH_NUMEL (default 10^8; the bench's --quick uses 10^6) choose
where and how big.
"""

import os

import torch

device = os.environ.get("OPTDBG_BENCH_DEVICE", "cpu")
numel = int(os.environ.get("OPTDBG_BENCH_NUMEL", str(10**8)))
w = torch.zeros(numel, device=device, requires_grad=True)
optimizer = torch.optim.Adam([w], lr=0.01)


def forward():
    return ((w - 1) ** 2).mean()
