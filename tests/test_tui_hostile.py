"""Scenarios and keys that used to crash the TUI: text from the scenario read as Rich markup
or written to the terminal as control codes, odd param groups, keys pressed too fast.

Each test drives the real app with Pilot and asserts on what the screen shows.
"""

from __future__ import annotations

import re
from pathlib import Path

from pilot_helpers import log_text, press, settle, status
from textual.events import Key
from textual.widgets import Input, Static

from optdbg.engine import Session, fmt
from optdbg.tui.app import OptDbgApp
from optdbg.tui.dialogs import (
    BreakpointDialog,
    DiagnosticsScreen,
    FieldList,
    HyperDialog,
)
from optdbg.tui.graphview import GraphPanel, GraphTree
from optdbg.tui.text import printable
from optdbg.tui.widgets import HistoryPanel, ParamsPanel, UpdatePanel

WIDE, NARROW = (160, 48), (80, 24)
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

HOSTILE = '''\
"""[bold red]Hostile[/] \\x1b[2J\\x1b[31mred\\x1b]0;pwned\\x07 title [/data/shard-3]

Docstring [link=https://example.com]link[/link] \\x1b[?1049l and [/].
"""
import torch

NAME = "[/]"
ODD = "[bold]b\\x1b[2Jx"
globals()[NAME] = torch.tensor([1.0, 2.0], requires_grad=True)
globals()[ODD] = torch.tensor([float("inf"), float("nan")], requires_grad=True)
model = torch.nn.Linear(2, 1)
model.register_parameter("[/]x", torch.nn.Parameter(torch.tensor([0.5])))
optimizer = torch.optim.SGD(
    [
        {"params": [globals()[NAME], globals()[ODD]], "lr": 0.1},
        {"params": list(model.parameters()), "lr": 0.01, "two words": 0.5},
    ],
    lr=0.1,
)
calls = 0


def forward():
    global calls
    calls += 1
    if calls == 3:
        raise ValueError("cannot read [/data/shard-3] \\x1b[2J [bold]oops[/]")
    x = globals()[NAME]
    return (x**2).sum() + model(x).sum() + getattr(model, "[/]x").sum()
'''


def write(tmp_path: Path, text: str, name: str = "scenario.py") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def screen_text(app: OptDbgApp) -> str:
    """Every line of the terminal as drawn (the active screen, dialogs included)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def no_control_codes(app: OptDbgApp) -> str:
    text = screen_text(app)
    assert not CONTROL.findall(text.replace("\n", "")), text
    return text


def static_text(widget: Static) -> str:
    return str(widget.render())


async def test_markup_and_control_codes_from_the_scenario_are_shown_literally(
    tmp_path: Path,
) -> None:
    app = OptDbgApp(scenario=write(tmp_path, HOSTILE))
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        assert app.session is not None, app.load_error
        title = printable("[bold red]Hostile[/] \x1b[2J\x1b[31mred\x1b]0;pwned\x07 title")
        assert title in status(app) and "\\x1b[2J" in title and "\\x07" in title
        await press(pilot, "f", "b", "s", "f", "b", "f")  # the third forward raises
        text = no_control_codes(app)
        table = app.query_one(ParamsPanel).query_one("DataTable")
        names = [str(k.value) for k in table.rows]  # type: ignore[attr-defined]
        odd = printable("[bold]b\x1b[2Jx")  # the engine names it so, escaped
        assert names == ["[/]", odd, "model.weight", "model.bias", "model.[/]x"]
        cells = [str(c) for c in table.get_row(odd)]  # type: ignore[attr-defined]
        assert cells[0] == "[bold]b\\x1b[2Jx" and cells[2].startswith("[inf, nan")
        assert "[inf, nan" in text  # the value cell is not blank
        assert "[/]  shape (2)" in static_text(app.query_one("#param-details-text", Static))
        assert "[/] ← [/] − lr·grad" in "\n".join(app.query_one(UpdatePanel).lines)
        log = log_text(app)
        assert "cannot read [/data/shard-3] \\x1b[2J [bold]oops[/]" in log
        history = app.query_one(HistoryPanel).query_one("DataTable")
        assert "[/data/shard-3]" in str(history.get_row("5")[3])  # type: ignore[attr-defined]
        errors = [n.message for n in app._notifications if "shard" in n.message]
        assert errors and "[/data/shard-3] \\x1b[2J [bold]oops[/]" in errors[0]
        assert "[/data/shard-3]" in status(app)
        await press(pilot, "u")  # back to the graph of the second forward
        graph = app.query_one(GraphTree)
        labels = []
        stack = [graph.root]
        while stack:
            node = stack.pop()
            labels.append(str(node.label))
            stack.extend(node.children)
        assert any("● [/]  #" in label for label in labels), labels
        assert any("● model.[/]x" in label for label in labels), labels
        await press(pilot, "3", "m")  # by module, then each node's details
        assert graph.by_module
        no_control_codes(app)
        await press(pilot, "d")
        assert isinstance(app.screen, DiagnosticsScreen)
        assert "[/]" in static_text(app.screen.query_one("#diagnostics-text", Static))
        no_control_codes(app)
        await press(pilot, "escape")
        for size in (NARROW, WIDE):
            await pilot.resize_terminal(*size)
            for key in "123456":
                await press(pilot, key)
                no_control_codes(app)


async def test_a_breakpoint_condition_with_markup_is_echoed_as_typed(tmp_path: Path) -> None:
    app = OptDbgApp(scenario=write(tmp_path, HOSTILE))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "k")
        dialog = app.screen
        assert isinstance(dialog, BreakpointDialog)
        dialog.query_one(Input).value = "'[/]' in warnings"
        await press(pilot, "enter")
        assert any("'[/]' in warnings" in n.message for n in app._notifications)
        await press(pilot, "k")
        dialog = app.screen
        assert isinstance(dialog, BreakpointDialog)
        dialog.query_one(Input).value = "loss < [/]"  # refused: the error quotes it
        await press(pilot, "enter")
        assert isinstance(app.screen, BreakpointDialog)
        assert static_text(app.screen.query_one("#dialog-error", Static)).strip()
        no_control_codes(app)


async def test_a_load_error_with_markup_and_control_codes(tmp_path: Path) -> None:
    text = 'import torch\nraise OSError("no file [/data/shard-3] \\x1b[2J [/]")\n'
    app = OptDbgApp(scenario=write(tmp_path, text))
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        assert app.has_class("-failed")
        shown = static_text(app.query_one("#error-text", Static))
        assert "no file [/data/shard-3] \\x1b[2J [/]" in shown
        no_control_codes(app)


async def test_hyperparameter_named_with_a_space_is_editable(tmp_path: Path) -> None:
    app = OptDbgApp(scenario=write(tmp_path, HOSTILE))
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)  # loaded (alone in a process, torch's import outlasts a key)
        await press(pilot, "H")
        dialog = app.screen
        assert isinstance(dialog, HyperDialog)
        index = next(i for i, (g, key, _) in enumerate(dialog.fields) if key == "two words")
        await press(pilot, *["down"] * index)
        field = dialog.query_one("#hp-value", Input)
        assert field.value == "0.5"
        assert "group 1 · two words" in screen_text(app)
        field.value = "0.25"
        await press(pilot, "enter")
        assert not isinstance(app.screen, HyperDialog)
        assert app.view is not None and app.view.snapshot.groups[1]["two words"] == 0.25
        assert "two words: 0.5 → 0.25" in log_text(app)


MANY_GROUPS = '''\
"""400 param groups, one tensor each."""
import torch

ts = [torch.tensor([float(i)], requires_grad=True) for i in range(400)]
optimizer = torch.optim.SGD([{"params": [t]} for t in ts], lr=0.1)


def forward():
    return (ts[0] ** 2).sum() + (ts[-1] ** 2).sum()
'''


async def test_hundreds_of_param_groups_open_the_dialog_with_a_few_widgets(
    tmp_path: Path,
) -> None:
    app = OptDbgApp(scenario=write(tmp_path, MANY_GROUPS))
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        await press(pilot, "H")
        dialog = app.screen
        assert isinstance(dialog, HyperDialog)
        fields = dialog.query_one(FieldList)
        assert fields.count == len(dialog.fields) and len(dialog.fields) >= 400 * 5
        assert len(dialog.query("*")) < 15  # one list drawn line by line, not a widget each
        await press(pilot, "ctrl+end")
        assert dialog.current == len(dialog.fields) - 1
        assert "group 399 ·" in screen_text(app)
        await press(pilot, "escape", "l")  # lr only: one line a group
        dialog = app.screen
        assert isinstance(dialog, HyperDialog)
        assert dialog.query_one(FieldList).count == 400
        await press(pilot, "ctrl+end")
        dialog.query_one("#hp-value", Input).value = "0.5"
        await press(pilot, "enter")
        assert app.view is not None
        lrs = [g["lr"] for g in app.view.snapshot.groups]
        assert lrs[-1] == 0.5 and set(lrs[:-1]) == {0.1}
        assert "lr 0.1, 0.1, 0.1, 0.1, … (400 groups)" in status(app)


LR_NONE = '''\
"""lr set to None after the optimizer is built."""
import torch

t = torch.tensor([1.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)
optimizer.param_groups[0]["lr"] = None


def forward():
    return (t**2).sum()
'''


async def test_lr_none_is_shown_and_the_step_refused(tmp_path: Path) -> None:
    app = OptDbgApp(scenario=write(tmp_path, LR_NONE))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "f", "b")
        assert "lr None" in status(app)
        await press(pilot, "c")  # continue reads every group's lr while it runs
        assert app.running is None
        # the log, not the toast: a toast may time out first on a loaded machine
        assert "step ✗ TypeError" in log_text(app) and "state is unchanged" in log_text(app)
        await press(pilot, "l")
        assert isinstance(app.screen, HyperDialog)  # None cannot be edited: said so
        assert "no lr to edit" in screen_text(app)


async def test_group_learning_rates_are_shown_in_group_order() -> None:
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        assert app.session is not None
        groups = app.session.optimizer.param_groups
        groups[0]["lr"] = 0.3
        app.session.optimizer.add_param_group({"params": [], "lr": 0.02})
        app.session.optimizer.add_param_group({"params": [], "lr": 0.3})
        await press(pilot, "z")
        assert "lr 0.3, 0.02, 0.3" in status(app)


async def test_keys_pressed_while_continue_closes_do_not_crash() -> None:
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await pilot.pause(0.2)
        assert app.running is not None
        running = app.running
        for key in "xy":  # both queued on the banner before it closes (a fast typist)
            running.post_message(Key(key, key))
        await settle(pilot)
        assert app.running is None
        assert "paused" in log_text(app)
        await press(pilot, "f")
        assert app.view is not None and app.view.snapshot.op_count > 0


async def test_redo_past_the_end_says_nothing_to_redo() -> None:
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "f", "right")
        notes = [(n.title, n.message) for n in app._notifications]
        assert notes[-1][0] == "" and notes[-1][1].startswith("nothing to redo")
        assert not any("refused" in title for title, _ in notes)
        assert "✗" not in log_text(app) and "nothing to redo" in log_text(app)


async def test_m_groups_by_module_wherever_the_focus_is() -> None:
    app = OptDbgApp(Session.open("mlp_sequential"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "f")
        tree = app.query_one(GraphPanel).tree
        assert not tree.has_focus and not tree.by_module
        await press(pilot, "m")
        assert tree.by_module
        assert any("0" in str(node.label) for node in tree.root.children)
        await press(pilot, "m")
        assert not tree.by_module
    app = OptDbgApp(Session.open("mlp_sequential"))
    async with app.run_test(size=NARROW) as pilot:  # one panel at a time: only on the graph's
        await press(pilot, "f", "m")
        assert not app.query_one(GraphTree).by_module
        await press(pilot, "3", "m")
        assert app.query_one(GraphTree).by_module


def test_printable_escapes_exactly_what_the_engine_escapes() -> None:
    """The UI's quick test for unsafe characters agrees with `fmt.text` on every character
    of the Basic Multilingual Plane (the surrogates included) and a few beyond, alone and
    inside text, kept on several lines or put on one."""
    chars = [chr(c) for c in range(0x10000)] + ["\U0001f600", "\U000e0001", "\U0010ffff"]
    for ch in chars:
        for s in (ch, f"a{ch}b"):
            assert printable(s) == fmt.text(s, limit=None, newlines=True)
            assert printable(s, one_line=True) == fmt.text(s, limit=None, newlines=False).replace(
                "\t", " "
            )


PRINTS = """\
import torch
w = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)


def forward():
    print("\\x1b[2Jcleared? [red]no[/red]")
    return ((w - 3) ** 2).sum()
"""


async def test_what_the_scenario_prints_is_shown_literally(tmp_path: Path) -> None:
    """A print with an escape sequence and markup reaches the log as visible text; the
    sequence never reaches the terminal (it cleared the screen)."""
    app = OptDbgApp(scenario=write(tmp_path, PRINTS))
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        await press(pilot, "f", "5")
        assert "\\x1b[2Jcleared? [red]no[/red]" in log_text(app)
        no_control_codes(app)
