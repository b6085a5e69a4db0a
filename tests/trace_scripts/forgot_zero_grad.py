"""A training loop that forgets optimizer.zero_grad(): every gradient is a running sum."""

import argparse

import torch
from torch import nn


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--save")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    X, y = torch.randn(32, 4), torch.randn(32, 1)
    for epoch in range(args.epochs):
        for i in range(0, 32, 16):
            loss = nn.functional.mse_loss(model(X[i : i + 16]), y[i : i + 16])
            loss.backward()  # op: backward
            optimizer.step()  # op: step
        print(f"epoch {epoch} loss {loss.item():.6f}")
    if args.save:
        torch.save(model.state_dict(), args.save)


if __name__ == "__main__":
    main()
