"""Layout snapshots (pytest-textual-snapshot). Update with: pytest tests/test_snapshots.py
--snapshot-update, then look at the SVGs in tests/__snapshots__ before committing."""

from __future__ import annotations

from pathlib import Path

import pytest
from pilot_helpers import settle
from textual.pilot import Pilot

from optdbg.engine import Session
from optdbg.tui.app import OptDbgApp

ROOT = Path(__file__).resolve().parents[1]


def opened(spec: str) -> Session:
    """A session whose undo checkpoints come every forward, not by measured cost, so the
    History panel's checkpoint marks (·) are the same on every machine and load."""
    session = Session.open(spec)
    session.history.every = 1
    return session


def keys(*presses: str):  # type: ignore[no-untyped-def]
    """A run_before that presses keys one by one, waiting for each op to finish."""

    async def run(pilot: Pilot[None]) -> None:
        await settle(pilot)
        for key in presses:
            await pilot.press(key)
            await settle(pilot)
        pilot.app.clear_notifications()
        await pilot.pause()

    return run


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_main_screen_after_forgotten_zero_grad(snap_compare, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app = OptDbgApp(opened("quadratic_bowl"))
    assert snap_compare(app, terminal_size=size, run_before=keys("f", "b", "s", "f", "b"))


def test_update_rule_panel_with_adam(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = OptDbgApp(opened("classifier_adam"))
    assert snap_compare(app, terminal_size=(80, 24), run_before=keys("f", "b", "s", "2"))


def test_update_rule_panel_of_a_manual_step(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """Issue 14: the lecture's hand-written step, its source lines and the plain rule
    `a -= learning_rate * a.grad` written out with the numbers of the first step."""
    app = OptDbgApp(opened("polynomial_manual"))
    assert snap_compare(app, terminal_size=(80, 24), run_before=keys("f", "b", "s", "2"))


def test_picker(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(OptDbgApp(), terminal_size=(100, 30), run_before=keys())


def test_help_screen(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = OptDbgApp(opened("quadratic_bowl"))
    assert snap_compare(app, terminal_size=(100, 30), run_before=keys("question_mark"))


def test_load_error_screen(snap_compare, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(ROOT)  # the message names the path as given: keep it stable
    app = OptDbgApp(scenario="tests/data/broken_optimizer.py")
    assert snap_compare(app, terminal_size=(100, 30), run_before=keys())


def test_diagnostics_view_with_several_warnings(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = OptDbgApp(opened("quadratic_bowl"))
    run = keys("f", "b", "f", "b", "s", "s", "d")
    assert snap_compare(app, terminal_size=(100, 30), run_before=run)


def test_graph_panel_after_backward(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = OptDbgApp(opened("mlp_sequential"))
    assert snap_compare(app, terminal_size=(120, 40), run_before=keys("f", "b", "3"))


def test_slow_motion_backward(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = OptDbgApp(opened("log_xy"))
    assert snap_compare(app, terminal_size=(100, 30), run_before=keys("f", "B", "right", "right"))


def test_comparison_landscape_of_the_bowl(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """The three learning rates of the lecture on one contour of the bowl."""
    from optdbg.engine.compare import Comparison, make_variants
    from optdbg.tui.compare_app import CompareApp

    variants = make_variants(["quadratic_bowl"], [("lr", [0.1, 10, 0.25])])
    app = CompareApp(Comparison.open(variants))
    assert snap_compare(app, terminal_size=(100, 30), run_before=keys(*"iiiiii", "L"))


def test_comparison_view(snap_compare) -> None:  # type: ignore[no-untyped-def]
    from optdbg.engine.compare import Comparison, make_variants
    from optdbg.tui.compare_app import CompareApp

    variants = make_variants(["quadratic_bowl"], [("lr", [0.1, 10, 0.25])])
    app = CompareApp(Comparison.open(variants))
    assert snap_compare(app, terminal_size=(80, 24), run_before=keys(*"iiiiii"))
