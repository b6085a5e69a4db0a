"""Valid: the scenario changes torch's global state at load (default dtype float64,
deterministic algorithms, anomaly detection, one thread).

Its own ops see that state, as in a plain loop; optdbg must reset it before loading the
next scenario, so another file loaded afterwards starts from torch's defaults.
"""

import torch

torch.set_default_dtype(torch.float64)
torch.use_deterministic_algorithms(True)
torch.autograd.set_detect_anomaly(True)
torch.set_num_threads(1)
t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)


def forward():
    return (t**2).sum()
