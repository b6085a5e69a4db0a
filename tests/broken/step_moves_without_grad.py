"""Valid: a custom optimizer whose step() moves the parameter without a gradient.

optdbg must report what step did: the parameter moved (never "nothing moved").
"""

import torch


class Drift(torch.optim.SGD):
    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(1.0)


t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = Drift([t], lr=0.1)


def forward():
    return (t**2).sum()
