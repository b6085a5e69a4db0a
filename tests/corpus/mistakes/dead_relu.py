"""Dead ReLUs: the hidden layer's biases start at -10, so every unit outputs 0 for every
input and no gradient reaches the first layer."""
# corpus: ops="f b s z" repeat=5 expect="dead-relu" at=0

import torch
from torch import nn

X = torch.randn(64, 4)
y = X.sum(1, keepdim=True)
data = [(X, y)]
model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 1))
with torch.no_grad():
    model[0].bias.fill_(-10.0)
loss_fn = nn.MSELoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
