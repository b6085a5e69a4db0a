"""Trains, evaluates after each epoch, and forgets to switch back: model.train() is called once,
before the epochs, so every epoch after the first trains with dropout off."""

import argparse

import torch
from torch import nn


def evaluate(model, X, y):
    model.eval()
    with torch.no_grad():
        return (model(X).argmax(dim=1) == y).float().mean().item()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--save")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    X, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    model.train()
    for epoch in range(args.epochs):
        for i in range(0, 64, 16):
            optimizer.zero_grad()  # op: zero_grad
            loss = nn.functional.cross_entropy(model(X[i : i + 16]), y[i : i + 16])
            loss.backward()  # op: backward
            optimizer.step()  # op: step
        print(f"epoch {epoch}: loss {loss.item():.4f} accuracy {evaluate(model, X, y):.3f}")
    if args.save:
        torch.save({"model": model.state_dict(), "opt": optimizer.state_dict()}, args.save)


if __name__ == "__main__":
    main()
