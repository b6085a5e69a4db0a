"""PyTorch tutorial, optim version: the cubic fit with torch.optim.RMSprop (lr 1e-3) over
2000 iterations. Its tiny, converging gradients once raised exploding-grad and
vanishing-grad (issue 16); a correct loop must stay silent."""
# corpus: ops="f z b s" repeat=2000

import math

import torch

x = torch.linspace(-math.pi, math.pi, 2000)
y = torch.sin(x)
xx = x.unsqueeze(-1).pow(torch.tensor([1, 2, 3]))
model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0, 1))
loss_fn = torch.nn.MSELoss(reduction="sum")
data = [(xx, y)]
learning_rate = 1e-3
optimizer = torch.optim.RMSprop(model.parameters(), lr=learning_rate)
