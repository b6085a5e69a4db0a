"""Gradient accumulation (4 micro-batches a step) with gradient clipping, on purpose."""

import argparse

import torch
from torch import nn


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--accum", type=int, default=4)
    parser.add_argument("--save")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    X, y = torch.randn(48, 6), torch.randn(48, 1)
    optimizer.zero_grad()  # op: zero_grad
    for i in range(12):
        xb, yb = X[4 * i : 4 * i + 4], y[4 * i : 4 * i + 4]
        loss = nn.functional.mse_loss(model(xb), yb) / args.accum
        loss.backward()  # op: backward
        if (i + 1) % args.accum == 0:
            nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)
            optimizer.step()  # op: step
            optimizer.zero_grad()  # op: zero_grad
            print(f"update {(i + 1) // args.accum}: loss {loss.item() * args.accum:.6f}")
    if args.save:
        torch.save(model.state_dict(), args.save)


if __name__ == "__main__":
    main()
