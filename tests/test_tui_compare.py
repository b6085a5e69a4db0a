"""The comparison view (Pilot): lockstep keys, choosing a variant, edits, the landscape."""

from __future__ import annotations

from pathlib import Path

import pytest
from pilot_helpers import press, settle, status
from textual.widgets import Input

from optdbg.engine.compare import Comparison, make_variants
from optdbg.tui.compare_app import CompareApp, ComparisonScreen, LossCurves, VariantsTable
from optdbg.tui.dialogs import HyperDialog
from optdbg.tui.landscape_view import LandscapeScreen


def bowl(*lrs: float) -> Comparison:
    return Comparison.open(make_variants(["quadratic_bowl"], [("lr", list(lrs))]))


def cells(app: CompareApp, row: int) -> list[str]:
    table = app.screen.query_one(VariantsTable)
    return [str(c) for c in table.get_row_at(row)]


async def test_keys_go_to_every_variant_and_enter_shows_the_chosen_ones_panels() -> None:
    comparison = bowl(0.1, 10, 0.25)
    app = CompareApp(comparison)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ComparisonScreen)
        await press(pilot, "f", "b", "s", "z", "i")
        assert [len(s.events) for s in comparison.sessions] == [8, 8, 8]
        assert cells(app, 0)[1:5] == ["lr=0.1", "131.52", "0.1", "2"]
        assert cells(app, 1)[2] == "69681"
        await press(pilot, "down", "down")  # choose lr=0.25
        await press(pilot, "enter")
        assert not isinstance(app.screen, ComparisonScreen)
        assert "loss 56.25" in status(app) and "lr 0.25" in status(app)
        await press(pilot, "u")  # undo goes back in every variant
        assert [len(s.events) for s in comparison.sessions] == [7, 7, 7]
        await press(pilot, "C")
        assert isinstance(app.screen, ComparisonScreen)


async def test_live_lr_edit_changes_the_chosen_variant_only() -> None:
    comparison = bowl(0.1, 0.25)
    app = CompareApp(comparison)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press(pilot, "down", "l")
        assert isinstance(app.screen, HyperDialog)
        assert app.screen.query_one(Input).value == "0.25"  # the chosen variant's lr
        app.screen.query_one(Input).value = "0.5"
        await press(pilot, "enter")
        lrs = [s.optimizer.param_groups[0]["lr"] for s in comparison.sessions]
        assert lrs == [0.1, 0.5]


async def test_continue_stops_when_any_variant_reaches_the_breakpoint() -> None:
    comparison = bowl(0.1, 0.25)
    app = CompareApp(comparison)
    app.break_condition, app.break_on_warning = "loss < 8.01", False
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press(pilot, "c")
        slow, fast = comparison.sessions
        assert fast.loss_value is not None and fast.loss_value < 8.01
        assert slow.loss_value is not None and slow.loss_value > 8.01
        assert len(slow.events) == len(fast.events)


async def test_landscape_draws_every_trajectory_and_the_curves_are_overlaid() -> None:
    comparison = bowl(0.1, 10, 0.25)
    app = CompareApp(comparison)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press(pilot, *"iiii")
        curves = app.screen.query_one(LossCurves).curves
        assert [len(c) for _, c in curves] == [4, 4, 4]
        await press(pilot, "L")
        await pilot.pause()
        assert isinstance(app.screen, LandscapeScreen)
        data = app.screen.landscape.contour
        assert data is not None and len(data.paths) == 3
        await press(pilot, "escape")
        assert isinstance(app.screen, ComparisonScreen)


async def test_export_writes_the_loss_curves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    app = CompareApp(bowl(0.1, 10))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press(pilot, "i", "i", "e")
    written = list(tmp_path.glob("quadratic_bowl-losses-op*.png"))
    assert len(written) == 1 and written[0].read_bytes()[:4] == b"\x89PNG"


async def test_a_variant_that_cannot_load_shows_its_message() -> None:
    app = CompareApp(variants=make_variants(["tests/data/broken_optimizer.py"], []))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.pause()
        assert not isinstance(app.screen, ComparisonScreen)  # the error, not an empty table
        assert app.load_error is not None and "broken_optimizer.py" in app.load_error
