"""DistributedDataParallel on CPU (gloo), as launched by `torchrun --nproc-per-node 2`."""

import argparse

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--save")
    args = parser.parse_args()
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0)
    model = DDP(nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 1)))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.manual_seed(1 + rank)  # each rank its own shard of data
    for step in range(args.steps):
        x, y = torch.randn(16, 5), torch.randn(16, 1)
        optimizer.zero_grad()  # op: zero_grad
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()  # op: backward
        optimizer.step()  # op: step
        print(f"rank {rank} step {step} loss {loss.item():.6f}", flush=True)
    if args.save:
        torch.save(model.module.state_dict(), f"{args.save}.rank{rank}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
