"""Odd terminals and odd scenarios: resizing, long names, every tensor rank, unicode.

Drives the real app with Pilot and reads back what the screen shows (the composed lines),
so "readable" means the text is on the screen, not only in a widget's state.
"""

from __future__ import annotations

from pathlib import Path

from pilot_helpers import press, settle, status
from textual.pilot import Pilot
from textual.widgets import DataTable

from optdbg.engine import Session
from optdbg.tui.app import OptDbgApp
from optdbg.tui.screens import HelpScreen
from optdbg.tui.widgets import StatusBar

SIZES = [(160, 48), (120, 40), (100, 30), (80, 24), (60, 16), (40, 12), (80, 24), (160, 48)]


def screen_lines(app: OptDbgApp) -> list[str]:
    """The text of every line of the terminal, as drawn."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


async def resize(pilot: Pilot[None], width: int, height: int) -> None:
    await pilot.resize_terminal(width, height)
    await settle(pilot)
    await pilot.pause()


def assert_fits(app: OptDbgApp, width: int, height: int) -> list[str]:
    """Every line drawn is exactly the terminal's width in cells (wide CJK and emoji count
    two, combining marks and joiners none); the text of the lines."""
    strips = app.screen._compositor.render_strips()
    assert app.size == (width, height)
    assert len(strips) == height
    assert [s.cell_length for s in strips] == [width] * height
    return [s.text for s in strips]


async def test_resizing_down_to_40x12_and_back_keeps_the_status_readable() -> None:
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=(160, 48)) as pilot:
        await press(pilot, "f", "b", "s")
        ops = 3
        for width, height in SIZES:
            await resize(pilot, width, height)
            lines = assert_fits(app, width, height)
            bar = app.query_one(StatusBar)
            assert bar.region.y == 0 and bar.region.width == width and bar.region.height >= 2
            top = "\n".join(lines[: bar.region.height])
            assert "Quadratic" in top, top
            assert f"op {ops}" in top and "loss" in top, top
            await press(pilot, "n")  # the app still works at this size
            ops += 1
            assert f"op {ops}" in status(app)
        assert not app.compact
        for panel in ("params", "graph", "loss", "log"):
            assert app.query_one(f"#{panel}").region.height > 0


async def test_tiny_terminal_shows_help_and_panels_without_crashing() -> None:
    app = OptDbgApp(Session.open("mlp_sequential"))
    async with app.run_test(size=(40, 12)) as pilot:
        await press(pilot, "i", "f", "b")
        for key in ("1", "2", "3", "4", "5"):
            await press(pilot, key)
            assert_fits(app, 40, 12)
        await press(pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert_fits(app, 40, 12)
        await press(pilot, "escape")
        await resize(pilot, 20, 6)  # smaller than anyone should use: still no crash
        await press(pilot, "s")
        assert_fits(app, 20, 6)
        await resize(pilot, 80, 24)
        assert "op 7" in "\n".join(screen_lines(app)[:3])


async def test_a_load_error_at_40x12_stays_on_screen(tmp_path: Path) -> None:
    path = tmp_path / ("a_rather_long_scenario_file_name_" * 3 + ".py")
    path.write_text("import torch\noptimizer = torch.optim.SGD([], lr=0.1)\n")
    app = OptDbgApp(scenario=path)
    async with app.run_test(size=(40, 12)) as pilot:
        await settle(pilot)
        assert app.has_class("-failed")
        lines = assert_fits(app, 40, 12)
        assert "could not be loaded" in "\n".join(lines)
        await resize(pilot, 160, 48)
        text = "\n".join(screen_lines(app))
        assert "empty parameter list" in text


LONG = "a_parameter_with_a_very_long_descriptive_name_" * 3
LONG = LONG[:120]
ODD = f'''\
"""Ünïcödé 🧪🔥 调试器 テスト — עברית العربية ∑∂∇ (title line)

Emoji 👩‍🔬🏳️‍🌈, CJK 优化器的逐步调试, RTL שלום עולם / مرحبا بالعالم, combining é and ﬁ.
A zero-width joiner‍ and a right-to-left mark\u200f in the middle of a line.
"""
import torch

{LONG} = torch.tensor(1.5, requires_grad=True)
r1 = torch.linspace(-1, 1, 5).requires_grad_()
r2 = torch.ones(3, 4, requires_grad=True)
r3 = torch.full((2, 3, 4), 0.5, requires_grad=True)
r4 = torch.ones(2, 2, 2, 2, requires_grad=True)
r5 = torch.ones(2, 1, 3, 1, 2, requires_grad=True)
r0 = torch.tensor(-2.0, requires_grad=True)
optimizer = torch.optim.Adam([{LONG}, r0, r1, r2, r3, r4, r5], lr=0.1)

def forward():
    total = {LONG} ** 2 + r0 ** 2
    for t in (r1, r2, r3, r4, r5):
        total = total + (t * t).sum()
    return total
'''
NAMES = [LONG, "r0", "r1", "r2", "r3", "r4", "r5"]


async def test_long_names_every_rank_and_unicode_at_80x24(tmp_path: Path) -> None:
    path = tmp_path / "odd.py"
    path.write_text(ODD, encoding="utf-8")
    session = Session.open(path)
    assert [name for name, _ in session.scenario.params] == NAMES
    assert session.scenario.title.startswith("Ünïcödé 🧪🔥 调试器")
    app = OptDbgApp(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await press(pilot, "f", "b", "s")
        lines = assert_fits(app, 80, 24)
        table = app.query_one(DataTable)
        assert [str(key.value) for key in table.rows] == NAMES
        assert table.region.height >= len(NAMES) + 1  # a header and every row on screen
        text = "\n".join(lines)
        assert LONG[:40] in text, text
        for name in NAMES[1:]:
            assert any(line.lstrip("│ ").startswith(name + " ") for line in lines), name
        assert "op 3" in text and "Ünïcödé" in text
        for key in ("2", "3", "4", "5", "1"):  # every panel renders the odd scenario
            await press(pilot, key)
            assert_fits(app, 80, 24)
        for size in ((40, 12), (160, 48), (80, 24)):
            await resize(pilot, *size)
            assert_fits(app, *size)
        await press(pilot, "i")
        assert app.view is not None and app.view.snapshot.op_count == 7


async def test_a_long_name_leaves_the_values_on_screen_at_80x24(tmp_path: Path) -> None:
    path = tmp_path / "odd.py"
    path.write_text(ODD, encoding="utf-8")
    app = OptDbgApp(Session.open(path))
    async with app.run_test(size=(80, 24)) as pilot:
        await press(pilot, "f", "b", "s")
        lines = assert_fits(app, 80, 24)
        header = next(line for line in lines if line.lstrip("│ ").startswith("name"))
        assert "value" in header and "grad" in header, header
        r0 = next(line for line in lines if line.lstrip("│ ").startswith("r0 "))
        assert "-1.9" in r0, r0  # r0 after one Adam step with lr 0.1 from -2
