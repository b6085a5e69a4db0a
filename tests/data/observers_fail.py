"""Observers that fail: objects that read fine at load and raise once the loop ran.

A correct loop for PyTorch (`python` runs it without complaint), but optdbg's observers read
these objects after each op and each one breaks one of them:
- `model` cannot list its parameters once its forward ran: the graph cannot be extracted
  (its parameters are named from that list);
- `seen` cannot be read from its end once it holds a loss: the pitfall detectors, which look
  for losses kept with their graphs, fail from the second forward on;
- `scheduler` cannot give its state once it stepped: the undo history cannot checkpoint
  (with a checkpoint before every forward).
Every op must still complete with the values of a plain loop, each failure shown on the
op that hit it.
"""

import torch
from torch import nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)
        self.ran = False

    def forward(self, x):
        self.ran = True
        return self.lin(x)

    def named_parameters(self, *args, **kwargs):
        if self.ran:
            raise RuntimeError("parameters listed after forward")
        return super().named_parameters(*args, **kwargs)


class Seen(list):
    def __getitem__(self, index):
        raise LookupError("seen losses cannot be read back")


class Scheduler(torch.optim.lr_scheduler.StepLR):
    def state_dict(self):
        if self.last_epoch > 0:
            raise RuntimeError("scheduler state unavailable after a step")
        return super().state_dict()


model = Model()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
scheduler = Scheduler(optimizer, step_size=10)
seen = Seen()
x, y = torch.ones(4, 2), torch.zeros(4, 1)


def forward():
    loss = ((model(x) - y) ** 2).mean()
    seen.append(loss.item())
    return loss
