"""The reference loader (tests/plain.py) seeds like optdbg: torch, `random` and NumPy's
global generator, so scenarios drawing from any of them start from the same values."""

from __future__ import annotations

import sys
from pathlib import Path

from optdbg.engine import Session

sys.path.insert(0, str(Path(__file__).parent))

from plain import PlainLoop, run_plain

SCENARIO = '''
"""Seeding: the start drawn from torch, random and NumPy's global generator."""
import random

import numpy as np
import torch

w = torch.tensor(
    [torch.rand(()).item(), random.random(), float(np.random.rand())], requires_grad=True
)
optimizer = torch.optim.SGD([w], lr=0.1)

def forward():
    return (w * torch.tensor([random.random(), float(np.random.rand()), 1.0])).sum()
'''


def test_optdbg_and_the_plain_loop_draw_the_same_numbers(tmp_path: Path) -> None:
    path = tmp_path / "seeded.py"
    path.write_text(SCENARIO, encoding="utf-8")
    session = Session.open(path)
    for word in ["f", "b", "s", "z", "f", "b", "s"]:
        assert all(e.ok for e in session.perform(word))
    loop = PlainLoop(run_plain(path))
    loop.ops("f b s z f b s")
    start = run_plain(path)["w"].tolist()
    assert len(set(start)) == 3  # three different draws, none left unseeded
    assert dict(session.scenario.params)["w"].tolist() == loop.ns["w"].tolist() != start
    assert session.loss_value == loop.loss.item()
