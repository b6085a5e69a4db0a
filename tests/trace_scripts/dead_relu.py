"""A hand-written initialisation gone wrong: the first layer's biases start at -5, so its ReLU
outputs 0 for every input and almost no gradient reaches that layer."""

import argparse

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 32)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(32, 3)
        nn.init.constant_(self.fc1.bias, -5.0)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--save")
    args = parser.parse_args()
    torch.manual_seed(0)
    net = Net()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    X, y = torch.randn(32, 8) * 0.5, torch.randint(0, 3, (32,))
    for step in range(args.steps):
        optimizer.zero_grad()  # op: zero_grad
        loss = nn.functional.cross_entropy(net(X), y)
        loss.backward()  # op: backward
        optimizer.step()  # op: step
        print(f"step {step}: loss {loss.item():.4f}")
    if args.save:
        torch.save({"net": net.state_dict(), "opt": optimizer.state_dict()}, args.save)


if __name__ == "__main__":
    main()
