"""PyTorch tutorial "Optimizing Model Parameters": the FashionMNIST network (Flatten,
Linear(784, 512), ReLU, Linear(512, 512), ReLU, Linear(512, 10)), CrossEntropyLoss and SGD
lr 1e-3 on batches of 64. Datasets cannot be downloaded here: the images are synthetic
(28 x 28, 10 classes, a class-dependent pattern plus noise), the shapes are the tutorial's."""
# corpus: ops="f b s z" repeat=30

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

learning_rate = 1e-3
batch_size = 64

gen = torch.Generator().manual_seed(0)
labels = torch.randint(0, 10, (640,), generator=gen)
patterns = torch.rand(10, 28, 28, generator=gen)
images = (patterns[labels] + 0.5 * torch.rand(640, 28, 28, generator=gen)).unsqueeze(1)
data = DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=True)


class NeuralNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28 * 28, 512),
            nn.ReLU(),
            nn.Linear(512, 512),
            nn.ReLU(),
            nn.Linear(512, 10),
        )

    def forward(self, x):
        return self.linear_relu_stack(self.flatten(x))


model = NeuralNetwork()
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
