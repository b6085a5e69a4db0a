"""A small GAN in the style of pytorch/examples' dcgan: two networks, two Adam optimizers."""

import argparse

import torch
from torch import nn


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--save")
    parser.add_argument("--lr-g", type=float, default=2e-3)
    parser.add_argument("--l1", type=float, default=0.0, help="weight of an L1 term in G's loss")
    opt = parser.parse_args()
    torch.manual_seed(0)
    netG = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    netD = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    criterion = nn.BCEWithLogitsLoss()
    optD = torch.optim.Adam(netD.parameters(), lr=2e-3, betas=(0.5, 0.999))
    optG = torch.optim.Adam(netG.parameters(), lr=opt.lr_g, betas=(0.5, 0.999))
    real = torch.randn(32, 2) * 0.5 + 2.0
    for i in range(opt.iters):
        # (1) update D: maximize log(D(x)) + log(1 - D(G(z)))
        optD.zero_grad()  # op: zero_grad
        errD_real = criterion(netD(real), torch.ones(32, 1))
        errD_real.backward()  # op: backward
        fake = netG(torch.randn(32, 4))
        errD_fake = criterion(netD(fake.detach()), torch.zeros(32, 1))
        errD_fake.backward()  # op: backward
        optD.step()  # op: step
        # (2) update G: maximize log(D(G(z)))
        optG.zero_grad()  # op: zero_grad
        errG = criterion(netD(fake), torch.ones(32, 1))
        if opt.l1:  # pix2pix-style: G's loss is mostly the weighted L1 term (~100x D's)
            errG = errG + opt.l1 * (fake - real).abs().mean()
        errG.backward()  # op: backward
        optG.step()  # op: step
        print(f"[{i}] Loss_D: {(errD_real + errD_fake).item():.4f} Loss_G: {errG.item():.4f}")
    if opt.save:
        torch.save(
            {
                "G": netG.state_dict(),
                "D": netD.state_dict(),
                "optD": optD.state_dict(),
                "optG": optG.state_dict(),
            },
            opt.save,
        )


if __name__ == "__main__":
    main()
