"""DDP on CPU (gloo) with deliberate bugs on rank 1: `--bug grad` scales its gradients after
the all-reduce at iteration 1, `--bug skip` skips optimizer.step() at iteration 2, `--bug
both` does both, `--bug none` is the clean loop."""

import argparse

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bug", choices=["none", "grad", "skip", "both"], default="none")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--save")
    args = parser.parse_args()
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0)
    model = DDP(nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 1)))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.manual_seed(1 + rank)
    for step in range(args.steps):
        x, y = torch.randn(16, 5), torch.randn(16, 1)
        optimizer.zero_grad()  # op: zero_grad
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()  # op: backward
        if args.bug in ("grad", "both") and rank == 1 and step == 1:
            for p in model.parameters():
                p.grad.mul_(2.0)  # rank 1 only: the replicas' gradients now differ
        if args.bug in ("skip", "both") and rank == 1 and step == 2:
            continue  # rank 1 only: no step after this backward
        optimizer.step()  # op: step
    print(f"rank {rank} done loss {loss.item():.6f}", flush=True)
    if args.save:
        torch.save(model.module.state_dict(), f"{args.save}.rank{rank}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
