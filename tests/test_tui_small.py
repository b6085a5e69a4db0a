"""Small screens: the footer fits 80 columns with the keys that apply now first, and
notifications stay out of the panels' and dialogs' way. One keys table feeds the bindings,
the footer and the help screen; the README's table is checked against it."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from pilot_helpers import press, settle
from textual.color import Color
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget

from optdbg.engine import Session
from optdbg.engine.events import WORDS
from optdbg.tui.app import OptDbgApp
from optdbg.tui.dialogs import DiagnosticsScreen
from optdbg.tui.keys import KEYS, KeyFooter
from optdbg.tui.screens import HELP, HelpScreen
from optdbg.tui.widgets import LogPanel, StatusBar

README = Path(__file__).resolve().parents[1] / "README.md"


async def footer_items(pilot: Pilot[None]) -> list[str]:
    """What the footer shows, one 'key word' per item, as drawn (left to right), once it
    has recomposed (it does after a refresh)."""
    app = pilot.app
    items: list[str] = []
    for _ in range(3):
        await settle(pilot)
        await pilot.pause()
        footer = app.screen.query_one(KeyFooter)
        keys = [w for w in footer.children if getattr(w, "key_display", None) is not None]
        items = [f"{w.key_display} {w.description}" for w in keys if w.region.width]  # type: ignore[attr-defined]
    return items


def footer_fits(app: OptDbgApp) -> bool:
    footer = app.screen.query_one(KeyFooter)
    return all(w.region.right <= footer.region.right for w in footer.children)


def toasts(app: OptDbgApp) -> list[Widget]:
    return [w for screen in app.screen_stack for w in screen.query("Toast")]


async def shown_toasts(pilot: Pilot[None], text: str = "") -> list[Widget]:
    """The toasts once the one with `text` is laid out and the ones it replaced are gone
    (toasts mount and unmount after a refresh); fails when that never happens."""
    app = pilot.app
    assert isinstance(app, OptDbgApp)
    for _ in range(100):
        found = [t for t in toasts(app) if text in str(t.render()) and t.region.height]
        if found and len(toasts(app)) == 1:
            return toasts(app)
        await pilot.pause(0.05)
    raise AssertionError(f"no lone toast {text!r}: {[str(t.render()) for t in toasts(app)]}")


async def test_footer_at_80x24_shows_the_op_keys_and_quit_whole() -> None:
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await press(pilot, "f")
        items = await footer_items(pilot)
        for item in ("f forward", "b backward", "s step", "z zero_grad", "q quit", "? help"):
            assert item in items
        assert footer_fits(app)
        # the keys come in the table's order: the op keys first
        assert items[:4] == ["f forward", "b backward", "s step", "z zero_grad"]


async def test_footer_shows_v_eval_only_where_the_scenario_evaluates() -> None:
    for name, shown in (("classifier_eval", True), ("quadratic_bowl", False)):
        app = OptDbgApp(Session.open(name))
        async with app.run_test(size=(80, 24)) as pilot:
            items = await footer_items(pilot)
            assert ("v eval" in items) is shown, (name, items)
            assert footer_fits(app)
            assert "q quit" in items


async def test_footer_never_cuts_a_key_in_half_at_100_columns() -> None:
    """Issue 11 saw the footer cut to "r r" at 100 columns: every key shown is whole."""
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        footer = app.screen.query_one(KeyFooter)
        assert footer_fits(app)
        assert "q quit" in await footer_items(pilot)
        shown = sum(w.region.width + 1 for w in footer.children if w.region.width)
        assert shown - 1 <= 100
    wide = OptDbgApp(Session.open("quadratic_bowl"))
    async with wide.run_test(size=(160, 48), notifications=True) as pilot:
        await settle(pilot)
        assert {"d diagnose", "B slow-mo", "r reload", "e export"} <= set(await footer_items(pilot))


async def test_footer_shows_what_applies_after_a_load_failure(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("import torch\nraise ValueError('no')\n")
    app = OptDbgApp(scenario=broken)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        items = await footer_items(pilot)
        assert "q quit" in items and "r reload" in items
        assert not any(i.startswith(("f ", "b ", "s ", "z ")) for i in items)  # no session


async def test_toast_at_80x24_sits_on_the_status_line_not_the_panel() -> None:
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await press(pilot, "f", "b", "f", "b")  # grad-accumulated
        shown = await shown_toasts(pilot, "grad-accumulated")
        assert len(shown) == 1  # one at a time: the log has them all
        status = app.query_one(StatusBar).region
        toast = shown[0].region
        assert toast.height <= status.height and status.contains_region(toast)
        await press(pilot, "b")  # backward through a freed graph: an error replaces it
        assert len(await shown_toasts(pilot, "backward refused")) == 1


async def test_toast_on_a_wide_screen_covers_only_the_log() -> None:
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        await press(pilot, "f", "b", "b")  # an error toast: a long message
        (toast,) = await shown_toasts(pilot, "backward refused")
        assert app.query_one(LogPanel).region.contains_region(toast.region)


async def test_toasts_wait_while_help_or_diagnose_is_open() -> None:
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await press(pilot, "f", "b", "f", "b")  # a warning toast, and a finding for d
        for key, screen_type in (("question_mark", HelpScreen), ("d", DiagnosticsScreen)):
            await press(pilot, key)
            assert isinstance(app.screen, screen_type)
            dialog = app.screen.query_one("#help, #diagnostics").region
            app.notify("a job finished while the dialog was open", severity="warning")
            await pilot.pause()
            assert list(app.screen.query("Toast")) == []  # nothing on the dialog
            for toast in toasts(app):  # any older toast is behind the dialog's screen
                assert toast.screen is not app.screen
            assert not _covers(app, dialog)
            await press(pilot, "escape")
            assert not isinstance(app.screen, screen_type)
            await shown_toasts(pilot, "while the dialog")  # shown once the dialog is gone


def _covers(app: OptDbgApp, dialog: Region) -> bool:
    return any(t.screen is app.screen and t.region.overlaps(dialog) for t in toasts(app))


def test_help_and_readme_list_every_key_of_the_table() -> None:
    readme = README.read_text()
    section = readme.split("## Keys", 1)[1].split("\n## ", 1)[0]
    listed = " ".join(line.split("|")[1] for line in section.splitlines() if line.startswith("|"))
    for key in KEYS:
        shown = key.display.split(" / ")[0]
        assert shown in listed, f"README's keys table lacks {shown}"
        assert shown in HELP
    # the op keys are the engine's short op words
    ops = {k.keys: k.action for k in KEYS if k.action.startswith("op(")}
    assert ops and all(re.sub(r"op\('(\w+)'\)", r"\1", a) == WORDS[k] for k, a in ops.items())


async def test_ctrl_s_saves_the_screen_as_svg_next_to_the_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import xml.etree.ElementTree as ET

    monkeypatch.chdir(tmp_path)
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=(100, 30)) as pilot:
        await press(pilot, "f", "ctrl+s", "ctrl+s")
        first, second = (
            tmp_path / "quadratic_bowl-op1-screen.svg",
            tmp_path / "quadratic_bowl-op1-screen-1.svg",
        )
        assert first.exists() and second.exists()  # never overwritten
        root = ET.parse(first).getroot()  # well-formed XML
        assert root.tag.endswith("svg")
        text = "".join(root.itertext()).replace("\xa0", " ")
        assert "loss" in text and "201" in text
        assert any(second.name in n.message for n in app._notifications)
        commands = [c.title for c in app.get_system_commands(app.screen)]
        assert "Save screen as SVG" in commands


def _luminance(c: Color) -> float:
    def channel(v: int) -> float:
        x = v / 255
        return x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b)


def _contrast(a: Color, b: Color) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


DRAWING = set("─│╭╮╰╯━╸╺┃╴╶└├┤┬┴┼┌┐┘╍╌┄┈ ·▶▼") | {chr(c) for c in range(0x2580, 0x25A0)}
DRAWING |= {chr(c) for c in range(0x2800, 0x2900)}
"""Borders, tree guides, scrollbars and the plot's braille: lines, not text to read."""
_CLASS = re.compile(r"\.(terminal-\d+-r\d+) \{ [^}]*?fill: (#[0-9a-f]{6})")
_RECT = re.compile(r'<rect fill="(#[0-9a-f]{6})" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)"')
_TEXT = re.compile(
    r'<text class="(terminal-\d+-r\d+)" x="([\d.]+)" y="([\d.]+)" textLength="[\d.]+"'
    r"[^>]*>(.*?)</text>"
)


def unreadable(svg: str, region: Region | None = None) -> list[str]:
    """Every run of text on the screen (from Textual's own SVG of it: the colours as
    drawn, dim and reverse resolved) whose colour is under 3:1 against the cell behind it."""
    fills = dict(_CLASS.findall(svg))
    rects = [(float(x), float(y), float(w), c) for c, x, y, w in _RECT.findall(svg)]
    found = []
    for cls, x, y, raw in _TEXT.findall(svg):
        text = html.unescape(raw).replace("\xa0", " ")
        col, row = round(float(x) / 12.2), round((float(y) - 20) / 24.4)
        if set(text) <= DRAWING or (region is not None and not region.contains(col, row)):
            continue
        behind = [
            c
            for rx, ry, rw, c in rects
            if abs(ry + 18.5 - float(y)) < 1 and rx <= float(x) < rx + rw
        ]
        ratio = _contrast(Color.parse(fills[cls]), Color.parse(behind[-1]))
        if ratio < 3.0:
            found.append(
                f"{ratio:.2f}:1 {fills[cls]} on {behind[-1]} at {col},{row}: {text.strip()!r}"
            )
    return found


@pytest.mark.parametrize("theme", ["textual-dark", "textual-light"])
async def test_every_text_on_screen_keeps_contrast_in_light_and_dark(theme: str) -> None:
    """The panels draw with Textual's theme variables, so they follow its light and dark
    themes; every text actually drawn (status, panels, log, footer, the diagnostics and
    help dialogs) stays at WCAG's 3:1 or more against what is behind it. Textual's light
    accent and footer keys were 1.4:1 and 2.9:1 on the panels (app.tcss overrides them)."""
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=(120, 40)) as pilot:
        app.theme = theme
        await press(pilot, "f", "b", "s", "f", "b")
        app.clear_notifications()
        await pilot.pause()
        assert unreadable(app.export_screenshot()) == []
        for key, screen, box in (
            ("d", DiagnosticsScreen, "#diagnostics"),
            ("question_mark", HelpScreen, "#help"),
        ):
            await press(pilot, key)
            assert isinstance(app.screen, screen)
            region = app.screen.query_one(box).region
            assert unreadable(app.export_screenshot(), region) == []
            await press(pilot, "escape")
