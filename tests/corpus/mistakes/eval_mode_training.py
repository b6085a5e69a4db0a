"""The forgotten model.train(): an accuracy check before training puts the model in eval
mode and leaves it there, so training runs without dropout."""
# corpus: ops="f b s z" repeat=5 expect="eval-mode-training" at=0

import torch
from torch import nn

X = torch.randn(64, 4)
y = (X.sum(1) > 0).long()
data = [(X, y)]
model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

model.eval()
with torch.no_grad():
    accuracy_before = (model(X).argmax(1) == y).float().mean()
# the mistake: no model.train() here
