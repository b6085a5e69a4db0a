"""Test-wide settings.

One torch thread per test process: pytest-xdist already runs a process per core, and
torch's own intra-op threads on top of that oversubscribe a small machine (small models
ran many times slower). Fidelity comparisons run both sides in the same process, so the
thread count cannot make them differ. Subprocesses (CLI tests) inherit the limit.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch  # after the environment, so child processes inherit it too

torch.set_num_threads(1)
