"""Random hostile text through the TUI: a parameter name, a docstring and an exception
message from the scenario, and what the user types into the hyperparameter and breakpoint
dialogs (Rich markup such as `[/]` and `[bold]`, brackets, ESC sequences and other control
characters, any unicode). Every panel shows it (its control characters as visible escapes,
nothing else changed or dropped), no control character reaches the screen, the app never
crashes, and the exports (PNG from `e`, the screen's SVG from ctrl+s, the engine's DOT and
SVG) are written and well formed. The headless outputs get the same text in
test_hostile_text.py.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import re
from pathlib import Path
from xml.etree import ElementTree

from hypothesis import HealthCheck, Phase, example, given, settings
from pilot_helpers import log_text, press, settle, status
from test_hostile_text import names, scenario, text
from textual.widgets import DataTable, Input, Static

from optdbg.engine import fmt
from optdbg.engine.export import export_graph, find_renderer
from optdbg.tui.app import OptDbgApp
from optdbg.tui.dialogs import BreakpointDialog, HyperDialog
from optdbg.tui.text import printable
from optdbg.tui.text import typed as without_controls
from optdbg.tui.widgets import HistoryPanel

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
RENDERER = find_renderer() is not None
plain_names = names.filter(lambda s: not hasattr(builtins, s) and s != "globals")


def screen_text(app: OptDbgApp) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def no_control_codes(app: OptDbgApp) -> str:
    shown = screen_text(app)
    assert not CONTROL.findall(shown.replace("\n", "")), shown
    return shown


def squeezed(value: str) -> str:
    """Without whitespace: the log wraps long lines wherever it must."""
    return "".join(value.split())


async def drive(folder: Path, name: str, doc: str, message: str, typed: str) -> None:
    path = scenario(folder, name, doc, message)
    app = OptDbgApp(scenario=path)
    async with app.run_test(size=(120, 36)) as pilot:  # wide: every panel on screen
        await settle(pilot)
        session = app.session
        assert session is not None, app.load_error
        await press(pilot, "f", "b", "s", "f")  # the second forward raises `message`
        no_control_codes(app)
        shown = fmt.name(name)
        table = app.query_one(DataTable)
        assert [str(key.value) for key in table.rows] == [shown]
        details = str(app.query_one("#param-details-text", Static).render())
        assert details.startswith(f"{printable(shown)}  shape (2)"), details
        title = session.scenario.title
        assert printable(title, one_line=True)[:40] in status(app)
        error = session.events[3].error
        assert error is not None and error.message == fmt.text(message.strip())
        assert squeezed(session.events[3].summary) in squeezed(log_text(app))
        history = app.query_one(HistoryPanel).query_one(DataTable)
        assert squeezed(session.events[3].summary) in squeezed(str(history.get_row("3")[3]))

        await press(pilot, "H")  # the user's text as a hyperparameter value
        dialog = app.screen
        assert isinstance(dialog, HyperDialog)
        field = dialog.query_one("#hp-value", Input)
        field.value = typed
        assert field.value == without_controls(typed)  # as pasted, less control characters
        await press(pilot, "enter")
        no_control_codes(app)
        if isinstance(app.screen, HyperDialog):  # refused: the error says so, in the dialog
            assert str(app.screen.query_one("#dialog-error", Static).render()).strip()
            await press(pilot, "escape")
        assert not isinstance(app.screen, HyperDialog)

        await press(pilot, "k")  # and as a breakpoint condition
        dialog = app.screen
        assert isinstance(dialog, BreakpointDialog)
        field = dialog.query_one("#cond", Input)
        field.value = typed
        assert field.value == without_controls(typed)
        await press(pilot, "enter")
        no_control_codes(app)
        if isinstance(app.screen, BreakpointDialog):
            assert str(app.screen.query_one("#dialog-error", Static).render()).strip()
            await press(pilot, "escape")
        else:
            said = [n.message for n in app._notifications if "stops at" in n.message]
            condition = printable(without_controls(typed).strip())
            assert said and squeezed(condition)[:30] in squeezed(said[-1])
        no_control_codes(app)

        await press(pilot, "3", "d")  # the graph's node details, the diagnosis
        no_control_codes(app)
        await press(pilot, "escape")
        await press(pilot, "ctrl+s")  # the screen as SVG
        if RENDERER:
            await press(pilot, "e")  # the graph as PNG
        graph = session.graph()
        assert graph is not None
    saved = list(folder.glob("*-screen.svg"))
    assert len(saved) == 1
    ElementTree.parse(saved[0])  # well-formed XML: no control character in it
    if RENDERER:
        (png,) = [p for p in folder.glob("*.png")]
        assert png.read_bytes().startswith(b"\x89PNG")
        for ext in ("svg", "dot"):
            result = export_graph(graph, folder / f"graph.{ext}", title=title, force=True)
            assert result.ok, result.message
        data = (folder / "graph.svg").read_bytes()
        ElementTree.fromstring(data)
        assert not CONTROL.findall((folder / "graph.dot").read_text().replace("\n", ""))


@settings(
    max_examples=5,  # a TUI run each: a few seconds (the headless test draws more)
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking a TUI run takes minutes
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=plain_names, doc=text, message=text, typed=text)
@example(
    name="[/]\x1b[2J[bold]",
    doc="[bold red]T[/] \x1b]0;title\x07 [/data/shard-3]\r\u202e",
    message="cannot read [/data/shard-3] \x1b[2J [bold]oops[/]\x00",
    typed="'[/]' in warnings\x1b[31m\x00",
)
def test_hostile_text_in_every_panel_dialog_and_export(
    tmp_path_factory: object, name: str, doc: str, message: str, typed: str
) -> None:
    folder = Path(tmp_path_factory.mktemp("hostile"))  # type: ignore[attr-defined]
    here = Path.cwd()
    os.chdir(folder)  # the exports are written to the working directory
    try:
        asyncio.run(drive(folder, name, doc, message, typed))
    finally:
        os.chdir(here)
