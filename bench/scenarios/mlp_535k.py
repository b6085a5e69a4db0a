"""MLP 784-512-256-10 (535,818 parameters), SGD momentum 0.9, batch 256

The benchmark model: Linear(784, 512) - ReLU - Linear(512, 256) - ReLU - Linear(256, 10)
with cross-entropy on a fixed random batch of 256 MNIST-sized inputs, trained by SGD
(lr 0.01, momentum 0.9). Large enough that the PyTorch work dominates a plain loop.
"""

import torch
from torch import nn

X = torch.randn(256, 784)
y = torch.randint(0, 10, (256,))
model = nn.Sequential(
    nn.Linear(784, 512),
    nn.ReLU(),
    nn.Linear(512, 256),
    nn.ReLU(),
    nn.Linear(256, 10),
)
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def forward():
    return loss_fn(model(X), y)
