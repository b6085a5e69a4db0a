"""PyTorch tutorial, nn version: the cubic fit as nn.Sequential(Linear(3, 1), Flatten(0, 1))
with MSELoss(reduction="sum"), updated by hand (param -= lr * param.grad), lr 1e-6."""
# corpus: ops="f b s z" repeat=300

import math

import torch

x = torch.linspace(-math.pi, math.pi, 2000)
y = torch.sin(x)
xx = x.unsqueeze(-1).pow(torch.tensor([1, 2, 3]))
model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0, 1))
loss_fn = torch.nn.MSELoss(reduction="sum")
data = [(xx, y)]
learning_rate = 1e-6


def step():
    with torch.no_grad():
        for param in model.parameters():
            param -= learning_rate * param.grad


def zero_grad():
    model.zero_grad()
