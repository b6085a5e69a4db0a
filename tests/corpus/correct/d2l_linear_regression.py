"""d2l.ai "Concise Implementation of Linear Regression": y = X w + b + noise with
w = (2, -3.4), b = 4.2, 1000 examples, nn.Linear(2, 1) initialized N(0, 0.01), MSELoss,
SGD lr 0.03, batches of 10, 3 epochs."""
# corpus: ops="f z b s" repeat=300

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

true_w, true_b = torch.tensor([2, -3.4]), 4.2
features = torch.normal(0, 1, (1000, 2))
labels = (features @ true_w + true_b + torch.normal(0, 0.01, (1000,))).reshape(-1, 1)
data = DataLoader(TensorDataset(features, labels), batch_size=10, shuffle=True)

model = nn.Sequential(nn.Linear(2, 1))
with torch.no_grad():
    model[0].weight.normal_(0, 0.01)
    model[0].bias.fill_(0)
loss_fn = nn.MSELoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.03)
