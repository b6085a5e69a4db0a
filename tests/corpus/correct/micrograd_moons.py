"""micrograd's demo in PyTorch: two moons (make_moons-like, 100 points, noise 0.1, made with
NumPy), an MLP 2 -> 16 -> 16 -> 1 with ReLU (weights uniform in [-1, 1], biases 0, as
micrograd's Neuron), the SVM max-margin loss plus 1e-4 L2, SGD with lr 1 - 0.9 k / 100 over
100 steps."""
# corpus: ops="f z b s" repeat=100

import numpy as np
import torch
from torch import nn

rng = np.random.RandomState(1)
n_out, n_in = 50, 50
outer = np.stack([np.cos(np.linspace(0, np.pi, n_out)), np.sin(np.linspace(0, np.pi, n_out))], 1)
inner = np.stack(
    [1 - np.cos(np.linspace(0, np.pi, n_in)), 1 - np.sin(np.linspace(0, np.pi, n_in)) - 0.5], 1
)
X = torch.tensor(np.vstack([outer, inner]) + rng.normal(scale=0.1, size=(100, 2)))
y = torch.tensor(np.hstack([np.ones(n_out), -np.ones(n_in)]))  # micrograd's labels: -1 / 1

model = nn.Sequential(
    nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1)
).double()
with torch.no_grad():
    for layer in model[::2]:
        layer.weight.uniform_(-1, 1)
        layer.bias.zero_()

optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: 1.0 - 0.9 * k / 100)
alpha = 1e-4


def forward():
    scores = model(X).squeeze(1)
    data_loss = torch.relu(1 + -y * scores).mean()
    reg_loss = alpha * sum((p * p).sum() for p in model.parameters())
    return data_loss + reg_loss
