"""Curve fitting with LBFGS, whose step() calls a closure that runs forward and backward."""

import sys

import torch


def fit(steps):
    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 20)
    y = 3 * x**3 - x + 0.5
    coeffs = torch.zeros(4, requires_grad=True)
    optimizer = torch.optim.LBFGS([coeffs], lr=0.5, max_iter=4)

    def closure():
        optimizer.zero_grad()  # op: zero_grad
        pred = coeffs[0] + coeffs[1] * x + coeffs[2] * x**2 + coeffs[3] * x**3
        loss = ((pred - y) ** 2).mean()
        loss.backward()  # op: backward
        return loss

    for step in range(steps):
        loss = optimizer.step(closure)  # op: step
        print(f"step {step}: loss {loss.item():.6f}")
    return coeffs


if __name__ == "__main__":
    result = fit(int(sys.argv[1]))
    if len(sys.argv) > 2:
        torch.save(result.detach(), sys.argv[2])
