"""PyTorch tutorial, custom nn.Module version: Polynomial3 with four scalar Parameters,
MSELoss(reduction="sum") and SGD lr 1e-6."""
# corpus: ops="f z b s" repeat=300

import math

import torch

x = torch.linspace(-math.pi, math.pi, 2000)
y = torch.sin(x)


class Polynomial3(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.randn(()))
        self.b = torch.nn.Parameter(torch.randn(()))
        self.c = torch.nn.Parameter(torch.randn(()))
        self.d = torch.nn.Parameter(torch.randn(()))

    def forward(self, x):
        return self.a + self.b * x + self.c * x**2 + self.d * x**3


model = Polynomial3()
loss_fn = torch.nn.MSELoss(reduction="sum")
data = [(x, y)]
optimizer = torch.optim.SGD(model.parameters(), lr=1e-6)
