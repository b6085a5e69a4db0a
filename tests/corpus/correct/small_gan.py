"""A small GAN on a 1-d Gaussian (mean 4, std 1.25): generator 8 -> 16 -> 1, discriminator
1 -> 16 -> 1, BCEWithLogits, Adam (lr 1e-3, betas 0.5, 0.999) with one param group each
(Adam's state is per parameter: the same numbers as two Adams). Simultaneous updates: one
backward fills the discriminator's gradient from its loss (fakes detached) and the
generator's from its own (the discriminator's weights detached in torch.func)."""
# corpus: ops="f b s z" repeat=150

import torch
from torch import nn
from torch.func import functional_call

G = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
D = nn.Sequential(nn.Linear(1, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
bce = nn.BCEWithLogitsLoss()
optimizer = torch.optim.Adam(
    [{"params": G.parameters()}, {"params": D.parameters()}], lr=1e-3, betas=(0.5, 0.999)
)
batch = 64


def forward():
    real = 4 + 1.25 * torch.randn(batch, 1)
    fake = G(torch.randn(batch, 8))
    d_loss = bce(D(real), torch.ones(batch, 1)) + bce(D(fake.detach()), torch.zeros(batch, 1))
    frozen = {k: v.detach() for k, v in D.named_parameters()}
    g_loss = bce(functional_call(D, frozen, (fake,)), torch.ones(batch, 1))
    return d_loss + g_loss
