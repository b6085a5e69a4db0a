"""The loss landscape and the exported pictures: evaluating them changes nothing."""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from optdbg.engine import Session
from optdbg.engine.compare import Comparison, make_variants
from optdbg.engine.landscape import LandscapeError, contour, kind, profile, slice2d
from optdbg.engine.plots import (
    PlotError,
    curve_range,
    write_landscape,
    write_loss_curves,
)

sys.path.insert(0, str(Path(__file__).parent))

from plain import PlainLoop

SIDE_EFFECTS = '''"""Side effects: prints, appends, counts, and draws dropout masks in forward."""
import torch
from torch import nn

seen = []
calls = {"n": 0}
model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.5), nn.Linear(4, 1))
X = torch.randn(8, 3)
y = torch.randn(8, 1)
data = [(X[:4], y[:4]), (X[4:], y[4:])]
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)


def forward(batch):
    xb, yb = batch
    loss = ((model(xb) - yb) ** 2).mean()
    seen.append(loss.item())
    calls["n"] += 1
    print("forward", len(seen))
    return loss
'''


def bits(t: torch.Tensor | None) -> Any:
    if t is None:
        return None
    t = t.detach().clone()
    if not t.is_floating_point():
        return t.tolist()
    return t.view(torch.int64 if t.dtype == torch.float64 else torch.int32).tolist()


def state_of(session: Session) -> dict[str, Any]:
    """Everything a landscape must leave alone, bit for bit."""
    ns = session.scenario.namespace
    model = ns.get("model")
    return {
        "params": [bits(p) for _, p in session.scenario.params],
        "versions": [p._version for _, p in session.scenario.params],
        "grads": [bits(p.grad) for _, p in session.scenario.params],
        "buffers": [bits(b) for b in model.buffers()] if model is not None else [],
        "torch_rng": torch.get_rng_state().tolist(),
        "python_rng": random.getstate(),
        "numpy_rng": np.random.get_state()[1].tolist(),
        "position": (session.epoch, session.batch, session.forward_count, len(session.events)),
        "loss": bits(session.loss),
        "seen": list(ns.get("seen", [])),
        "calls": dict(ns.get("calls", {})),
        "optimizer": {
            k: bits(v) if isinstance(v, torch.Tensor) else v
            for st in session.optimizer.state.values()
            for k, v in st.items()
        },
    }


def test_bowl_contour_holds_every_trajectory_and_changes_nothing() -> None:
    comparison = Comparison.open(make_variants(["quadratic_bowl"], [("lr", [0.1, 10, 0.25])]))
    for _ in range(5):
        for word in ("f", "z", "b", "s"):
            comparison.perform(word)
    comparison.perform("f")  # a live graph: a backward after the landscape must still work
    before = [state_of(s) for s in comparison.sessions]
    assert kind(comparison.sessions[0]) == "contour"
    data = contour(comparison.sessions, comparison.labels, 21, 11)
    assert [state_of(s) for s in comparison.sessions] == before
    assert data.axes == ("t[0]", "t[1]") and len(data.xs) == 21 and len(data.ys) == 11
    assert [len(p) for p in data.paths] == [6, 6, 6]
    assert data.paths[0][:2] == ((10.0, 10.0), (8.600000381469727, 7.599999904632568))
    # the box holds the converging runs and the start; the diverging run flies off it
    for x, y in [*data.paths[0], *data.paths[2], data.paths[1][0]]:
        assert data.xs[0] <= x <= data.xs[-1] and data.ys[0] <= y <= data.ys[-1]
    assert data.paths[1][1] == (-130.0, -230.0) and data.xs[0] > -130 and data.ys[-1] < 20
    x, y, low = data.minimum() or (0, 0, 0)
    assert low == min(v for row in data.loss for v in row)
    corner = (data.xs[0] - 3) ** 2 + (data.ys[0] + 2) ** 2 + 8
    assert math.isclose(data.loss[0][0], corner, rel_tol=1e-6)  # float32 at float64 points
    # the run goes on exactly as a plain loop that never drew a landscape
    comparison.perform("z")
    comparison.perform("b")
    comparison.perform("s")
    loop = PlainLoop.load("quadratic_bowl")
    loop.ops("f z b s", 6)
    assert bits(comparison.sessions[0].scenario.namespace["t"]) == bits(loop.ns["t"])


def test_profile_and_slice_of_a_model_with_side_effects_change_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "effects.py"
    path.write_text(SIDE_EFFECTS, encoding="utf-8")
    session = Session.open(path)
    with pytest.raises(LandscapeError, match="no step yet"):
        profile(session)
    for word in ("f", "b", "s", "z", "f", "b", "s", "f"):
        session.perform(word)
    capsys.readouterr()
    before = state_of(session)
    assert kind(session) == "profile"
    line = profile(session, "effects", alphas=(0.0, 0.5, 1.0))
    plane = slice2d(session, "effects", points=3)
    assert state_of(session) == before
    assert capsys.readouterr().out == ""  # the forward's prints were not repeated
    assert len(line.losses) == 3 and all(math.isfinite(v) for v in line.losses)
    assert len(plane.loss) == 3 and len(plane.loss[0]) == 3 and plane.paths[0][1] == (1.0, 0.0)
    assert line.step_norm > 0
    # the run goes on exactly as a plain loop: same batch order, dropout masks, buffers
    session.perform("b")
    session.perform("s")
    loop = PlainLoop.load(path)
    loop.ops("f b s z f b s f b s")
    for (_, mine), theirs in zip(
        session.scenario.params, loop.ns["model"].parameters(), strict=True
    ):
        assert bits(mine) == bits(theirs)
    assert len(session.scenario.namespace["seen"]) == 3 == len(loop.ns["seen"])


def test_profile_starts_where_the_step_started(tmp_path: Path) -> None:
    session = Session.open("linear_regression")
    session.perform("f")
    first = session.loss_value
    session.perform("b")
    session.perform("s")
    line = profile(session, alphas=(0.0, 1.0))
    session.perform("f")
    assert line.losses[0] == first  # α = 0: the loss the step started from
    assert line.losses[1] == session.loss_value  # α = 1: where the step went


def test_curve_range_keeps_a_diverging_curve_from_flattening_the_others() -> None:
    low, high, log = curve_range([[201, 131, 87, 8.1], [201, 69681, 2.5e7, math.inf]]) or (0,) * 3
    assert (low, high, log) == (8.1, 201, False)
    low, high, log = curve_range([[1e4, 10, 0.1], [5e3, 1e3]]) or (0,) * 3
    assert log and low == 0.1


def test_pictures_are_written_as_png_and_svg(tmp_path: Path) -> None:
    comparison = Comparison.open(make_variants(["quadratic_bowl"], [("lr", [0.1, 10])]))
    for _ in range(3):
        comparison.perform("i")
    curves = [s.loss_history for s in comparison.sessions]
    png, svg = tmp_path / "loss.png", tmp_path / "land.svg"
    assert "loss curves written" in write_loss_curves(png, comparison.labels, curves)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    before = [state_of(s) for s in comparison.sessions]
    write_landscape(svg, comparison.sessions, comparison.labels, "bowl")
    assert [state_of(s) for s in comparison.sessions] == before
    text = svg.read_text(encoding="utf-8")
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    with pytest.raises(PlotError, match="exists"):
        write_loss_curves(png, comparison.labels, curves)
    with pytest.raises(PlotError, match=r"\.png or \.svg"):
        write_loss_curves(tmp_path / "loss.jpg", comparison.labels, curves)
