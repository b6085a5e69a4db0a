"""Labels shuffled apart from their points (a second shuffle): nothing links inputs and
labels, and the loss stays at ln(3)."""
# corpus: ops="f b s z" repeat=125 expect="loss-at-chance" at=472

import torch
from torch import nn

gen = torch.Generator().manual_seed(0)
labels = torch.arange(3).repeat_interleave(100)
centers = torch.tensor([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
points = centers[labels] + 0.5 * torch.randn(300, 2, generator=gen)
labels = labels[torch.randperm(300, generator=gen)]  # the mistake: shuffled on its own
data = [(points, labels)]
model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 3))
with torch.no_grad():
    model[2].weight.mul_(0.01)
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
