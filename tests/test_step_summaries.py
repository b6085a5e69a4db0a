"""A big parameter's step record is kept as summaries taken at the step, not copies
(`Session.record_copy_bytes`): what it shows equals, bit for bit, the record made of copies,
after every op and after undo, redo and goto; it holds no tensor once the step op ends."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from optdbg.engine import Session
from optdbg.engine.landscape import LandscapeError, profile

SCENARIO = """
import torch
torch.manual_seed(1)
w = torch.randn(300, requires_grad=True)
m = torch.randn(4, 50, requires_grad=True)
b = torch.randn(3, requires_grad=True)
optimizer = torch.optim.{optimizer}
calls = [0]

def forward():
    calls[0] += 1
    if calls[0] % 3 == 0:
        w.data.mul_(0.5)  # a write the version counter does not see
    return ((w - 1) ** 2).mean() + (m ** 2).mean() + (b ** 2).sum()
"""

OPTIMIZERS = [
    "SGD([w, m, b], lr=0.1, momentum=0.9)",
    "Adam([w, m, b], lr=0.1, fused=True)",
    "AdamW([w, m, b], lr=0.1)",
]
WORDS = ["f", "b", "s", "z", "f", "b", "s", "f", "b", "b", "s", "z", "s", "f", "b", "s"]


def _pair(tmp_path: Path, optimizer: str) -> tuple[Session, Session]:
    path = tmp_path / "scenario.py"
    path.write_text(SCENARIO.format(optimizer=optimizer), encoding="utf-8")
    copies, summaries = Session.open(path), Session.open(path)
    summaries.record_copy_bytes = 100  # w (1200 bytes) and m (800) are big, b is not
    return copies, summaries


def _shown(session: Session) -> tuple[object, ...]:
    snap = session.snapshot()
    return snap, tuple(session.update_detail(p.name) for p in snap.params)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_summarized_records_show_what_copies_show(tmp_path: Path, optimizer: str) -> None:
    copies, summaries = _pair(tmp_path, optimizer)
    for i, word in enumerate(WORDS):
        a, b = copies.perform(word), summaries.perform(word)
        assert [e.summary for e in a] == [e.summary for e in b], (i, word)
        assert _shown(copies) == _shown(summaries), (i, word)
    assert set(summaries.summarized_steps) == {"w", "m"}
    assert set(summaries.moved) == {"b"}  # no copy of w or m outlives the step op
    assert copies.summarized_steps == ()


@pytest.mark.parametrize("optimizer", OPTIMIZERS[1:2])
def test_summarized_records_travel_bit_exactly(tmp_path: Path, optimizer: str) -> None:
    copies, summaries = _pair(tmp_path, optimizer)
    for word in WORDS:
        copies.perform(word)
        summaries.perform(word)
    for jump in ("undo 1", "undo 3", "redo 2", "goto 5", "goto 2", "redo 4", "undo 6"):
        verb, n = jump.split()
        for s in (copies, summaries):
            getattr(s, verb)(int(n))
        assert _shown(copies) == _shown(summaries), jump
        for a, b in zip(copies.scenario.params, summaries.scenario.params, strict=True):
            assert torch.equal(a[1].detach(), b[1].detach()), jump


def test_the_landscape_says_a_summarized_step_cannot_be_drawn(tmp_path: Path) -> None:
    _, summaries = _pair(tmp_path, OPTIMIZERS[0])
    for word in ["f", "b", "s"]:
        summaries.perform(word)
    with pytest.raises(LandscapeError, match="kept summaries, not copies"):
        profile(summaries)
