"""TraceApp: a user's training script, paused before each of its own ops.

The engine is `optdbg.engine.trace.debugger.TraceDebugger` (injected, or made from the script
path): the script runs in its thread and waits at each op; this app stays free on the UI
thread, receives detached `Paused` outcomes and the script's printed lines as messages, and
hands them to the same panels as the scenario screen.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Container, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, Static, Tab, Tabs

from optdbg.engine import debugger as dbg
from optdbg.engine import fmt

from .app import PANEL_TITLES, PANELS, PanelLayout
from .dialogs import BreakpointDialog, DiagnosticsScreen
from .graphview import GraphPanel
from .widgets import (
    PLOT_POINTS,
    HistoryPanel,
    LogPanel,
    LossPanel,
    ParamsPanel,
    UpdatePanel,
    failures_toast,
    themed,
)

if TYPE_CHECKING:
    from optdbg.engine.trace.debugger import Paused, TraceDebugger


class TraceStatus(Static):
    """The script, its counters and loss, and the op it is paused before (or its end)."""

    paused: reactive[Paused | None] = reactive(None, always_update=True)
    running: reactive[bool] = reactive(False)

    def render(self) -> Text:
        p = self.paused
        text = Text(no_wrap=True, overflow="ellipsis")
        if p is None:
            text.append(" optdbg trace ", style="bold reverse")
            text.append("  starting the script…\n\n")
            return text
        snap = p.snapshot
        text.append(f" {snap.title} ", style="bold reverse")
        if self.running:
            text.append("  ⏳ running", style="bold $text-warning")
        text.append("\n")
        parts = [("op ", str(snap.op_count)), ("loss# ", str(snap.iteration))]
        parts += [("step ", str(snap.step_count)), ("loss ", fmt.num(snap.loss))]
        for i, (label, value) in enumerate(parts):
            text.append((" · " if i else " ") + label, style="dim")
            text.append(value, style="bold")
        if p.pending is not None and not self.running:
            who = f" of {p.pending.optimizer}" if p.pending.optimizer else ""
            text.append("  paused before: ", style="dim")
            text.append(f"{p.pending.op}{who}", style="bold $text-accent")
            text.append(f" at {p.pending.where.short} ({p.pending.where.function})")
        text.append("\n ")
        text.append(p.reason, style="bold $text-warning" if "warning" in p.reason else "dim")
        return themed(text, self.app.theme_variables)


class TraceApp(PanelLayout, App[int]):
    """Step through a training script's own backward, step and zero_grad calls."""

    CSS_PATH = "app.tcss"
    TITLE = "optdbg trace"
    BINDINGS = [
        Binding("n", "next", "next op", tooltip="perform the paused op, pause at the next"),
        Binding("space", "next", "next op", show=False),
        Binding(
            "c", "continue", "continue", tooltip="run until a warning, the breakpoint, the end"
        ),
        Binding("k", "breakpoint", "breakpoint", tooltip="where continue stops (also `where`)"),
        Binding("d", "diagnostics", "diagnose", tooltip="every pitfall found, with fixes"),
        Binding("r", "restart", "restart", tooltip="run the script again, fast-forward to an op"),
        Binding("q", "quit", "quit", tooltip="stop the script and quit"),
        *(
            Binding(str(i + 1), f"panel('{p}')", PANEL_TITLES[p], show=False)
            for i, p in enumerate(PANELS)
        ),
    ]

    compact: reactive[bool] = reactive(False)
    panel: reactive[str] = reactive("params")

    class Update(Message):
        """The script paused (or ended): what the panels show."""

        def __init__(self, paused: Paused) -> None:
            super().__init__()
            self.paused = paused

    class Printed(Message):
        """A line the script printed."""

        def __init__(self, line: str) -> None:
            super().__init__()
            self.line = line

    def __init__(self, debugger: TraceDebugger | None = None, **kwargs: Any) -> None:
        """Either an engine (its callbacks are set here), or `script` and `args` for one."""
        super().__init__()
        if debugger is None:
            from optdbg.engine.trace.debugger import TraceDebugger

            debugger = TraceDebugger(
                kwargs["script"], kwargs.get("args", []), self._paused, self._printed,
                max_ops=kwargs.get("max_ops"), thresholds=kwargs.get("thresholds"),
                rank=kwargs.get("rank"),
            )  # fmt: skip
        debugger.on_pause, debugger.on_output = self._paused, self._printed
        self.debugger = debugger
        self.paused: Paused | None = None
        self.shown = 0
        self.warned: dict[int, int] = {}
        self.run_shown = -1
        self.printed: list[str] = []
        self.selected: str | None = None
        self.note: str | None = kwargs.get("note")
        """A line for the log at the start (under torchrun: where the other ranks write)."""
        self._break = ""
        self._on_warning = True
        """Where `c` stops: the breakpoint expression, and at any warning."""

    # called in the script's thread: messages are thread-safe
    def _paused(self, paused: Paused) -> None:
        self.post_message(self.Update(paused))

    def _printed(self, line: str) -> None:
        self.post_message(self.Printed(line))

    def compose(self) -> ComposeResult:
        yield TraceStatus(id="status")
        yield Tabs(*(Tab(PANEL_TITLES[p], id=f"tab-{p}") for p in PANELS), id="tabs")
        with Container(id="panels"):
            yield ParamsPanel(id="params", classes="panel")
            yield TraceGraphPanel(id="graph", classes="panel")
            yield UpdatePanel(id="update", classes="panel")
            yield TraceLossPanel(id="loss", classes="panel")
            yield HistoryPanel(id="history", classes="panel")
            yield LogPanel(id="log", classes="panel", markup=False, wrap=True, min_width=20)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self._fit(self.size.width, self.size.height)
        if self.note:
            self.query_one(LogPanel).note(self.note, "bold")
        self.query_one(UpdatePanel).border_title = "Optimizers"
        self.debugger.start()

    def action_panel(self, name: str) -> None:
        self.panel = name

    def on_params_panel_selected(self, message: ParamsPanel.Selected) -> None:
        self.selected = message.name
        if self.paused is not None:
            self.query_one(UpdatePanel).lines = _optimizers(self.paused, self.selected)

    # ------------------------------------------------------------------ messages

    def on_trace_app_printed(self, message: Printed) -> None:
        self.printed.append(message.line)
        self.query_one(LogPanel).printed(message.line)

    def on_trace_app_update(self, message: Update) -> None:
        p = message.paused
        log = self.query_one(LogPanel)
        if p.run != self.run_shown:
            self.run_shown, self.shown, self.warned = p.run, 0, {}
            if p.run:
                log.note(f"— restarted {self.debugger.script.name} (run {p.run + 1}) —", "bold")
        late = [e for e in p.events[: self.shown] if len(e.warnings) > self.warned.get(e.index, 0)]
        for event in late:  # a warning known only once a later step used the gradient
            log.note(f"a later op found a warning on op {event.index}:", "bold")
        log.add_events(late + list(p.events[self.shown :]))
        failed = failures_toast(list(p.events[self.shown :]))
        if failed is not None:
            self.notify(failed, title="an observer failed (the op completed)", severity="warning")
        self.warned.update({e.index: len(e.warnings) for e in p.events if e.warnings})
        self.shown = len(p.events)
        if p.ended is not None:
            log.note(p.reason, "bold")
        self.paused = p
        with self.batch_update():
            status = self.query_one(TraceStatus)
            status.running = False
            status.paused = p
            self.query_one(ParamsPanel).snapshot = p.snapshot
            self.query_one(UpdatePanel).lines = _optimizers(p, self.selected)
            graph = self.query_one(GraphPanel)
            graph.error = p.graph_error
            if graph.graph is not p.graph:
                graph.graph = p.graph
            self.query_one(TraceLossPanel).series = p.losses
            self.query_one(HistoryPanel).timeline = p.timeline

    # ------------------------------------------------------------------ actions

    def _waiting(self) -> bool:
        return self.paused is not None and self.paused.pending is not None

    def action_next(self) -> None:
        self._release(dbg.Perform("next"))

    def action_continue(self) -> None:
        self._release(dbg.ContinueUntil(self._break, self._on_warning))

    def _release(self, command: dbg.Command) -> None:
        """Let the paused script go on (the next `Paused` comes as an Update)."""
        if not self._waiting():
            return
        refused = self.debugger.execute(command)
        if refused is not None:
            self.notify(getattr(refused, "text", str(refused)), severity="warning")
            return
        self.query_one(TraceStatus).running = True
        self.paused = None

    def action_diagnostics(self) -> None:
        found = self.debugger.execute(dbg.Diagnose())
        if isinstance(found, dbg.Diagnosed):
            self.push_screen(DiagnosticsScreen(list(found.diagnoses), found.ops))

    def action_restart(self) -> None:
        if self.debugger.rank is not None:
            self.notify(
                "no restart under torchrun: the other ranks cannot start again with this one",
                severity="warning",
            )
            return
        at = len(self.paused.events) if self.paused is not None else 0

        def chosen(run_to: int | None) -> None:
            if run_to is None:
                return
            if not self.debugger.restart(run_to=run_to):
                self.notify(
                    "the script did not stop (busy outside an op): try again", severity="warning"
                )

        self.push_screen(RestartDialog(at), chosen)

    def action_breakpoint(self) -> None:
        from optdbg.engine.breakpoints import NAMES

        def chosen(result: tuple[str, bool] | None) -> None:
            if result is None:
                return
            text, on_warning = result
            self._break, self._on_warning = text, on_warning
            what = f"`{text}`" if text else "no condition"
            self.notify(f"continue stops at {what}" + (" or a warning" if on_warning else ""))

        names = {k: v for k, v in NAMES.items() if k not in ("epoch", "batch")}
        self.push_screen(BreakpointDialog(self._break, self._on_warning, names), chosen)

    def on_unmount(self) -> None:
        self.debugger.close()

    async def action_quit(self) -> None:
        self.debugger.stop()
        status = self.paused.ended if self.paused is not None else None
        self.exit(status or 0)


def _optimizers(p: Paused, selected: str | None) -> tuple[str, ...]:
    """Each optimizer with its latest step: the update rule with its numbers (engine.rules)
    for the selected parameter where that optimizer moved it, else its first one."""
    from optdbg.engine.rules import describe

    snap = p.snapshot
    if not snap.optimizer:
        return ("No optimizer created yet.",)
    lines = [snap.optimizer]
    for info in p.steps:
        detail = next((u for u in info.updates if u.name == selected), None)
        detail = detail or (info.updates[0] if info.updates else None)
        lines.append("")
        lines.append(f"{info.optimizer} ({info.kind}): step at op {info.index}, {info.where.short}")
        if detail is None:
            lines.append("  no parameter had a gradient: nothing moved")
            continue
        lines.append(f"  {detail.name}:")
        lines += [f"  {line}" for line in describe(detail)]
    if not p.steps:
        lines.append("No step yet: the update rule appears after the script's first step().")
    return tuple(lines)


class RestartDialog(ModalScreen[int | None]):
    """`r`: run the script again from the start, fast-forwarding to an op number."""

    DEFAULT_CSS = "RestartDialog { align: center middle; }"
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Restart the script and pause before op…", id="dialog-title")
            yield Input(str(self.at), placeholder="0: its first op", id="run-to", type="integer")
            yield Static(
                Text(
                    "The ops before it run unpaused and are checked against this run: a "
                    "different op, line or loss (a script that is not deterministic) is "
                    "replay-diverged and stops there.",
                    style="dim",
                ),
                id="dialog-help",
            )
            yield Static(id="dialog-error")
            yield Button("Restart (enter)", variant="primary", id="apply")

    @on(Input.Submitted)
    @on(Button.Pressed, "#apply")
    def apply(self) -> None:
        text = self.query_one("#run-to", Input).value.strip() or "0"
        try:
            run_to = int(text)
        except ValueError:
            run_to = -1
        if run_to < 0:
            self.query_one("#dialog-error", Static).update(
                Text(f"{text!r} is not an op number (0 or more)", style="bold red")
            )
            return
        self.dismiss(run_to)


class TraceGraphPanel(GraphPanel):
    """The graph of the loss the latest backward ran on, with its gradient flow."""

    EMPTY_HINT = "the graph appears at the script's first backward"
    KEYS_HINT = ""


class TraceLossPanel(LossPanel):
    """The loss plot with one line per loss the script backpropagates (by its name)."""

    series: reactive[tuple[tuple[str, tuple[float, ...]], ...]] = reactive(())

    def watch_series(self, series: tuple[tuple[str, tuple[float, ...]], ...]) -> None:
        if len(series) <= 1:
            self.history = (series[0][1] if series else (), ())
            return
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        for (name, values), color in zip(series, _COLORS * len(series), strict=False):
            stride = max(1, len(values) // PLOT_POINTS)
            points = [
                (i + 1, v) for i, v in enumerate(values) if math.isfinite(v) and i % stride == 0
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                plt.plot(list(xs), list(ys), marker="braille", color=color, label=name)
        plt.title("  ".join(f"{n} {fmt.num(v[-1]) if v else '—'}" for n, v in series))
        self.refresh()


_COLORS = ("cyan", "orange", "magenta", "green", "yellow")


def open_trace_tui(
    script: Path,
    args: list[str],
    max_ops: int | None = None,
    thresholds: Any = None,
    rank: int | None = None,
    note: str | None = None,
) -> int:
    """Open the paused TUI on the script; the process ends with the app (a script stuck
    outside an op is not waited for)."""
    app = TraceApp(
        script=script, args=args, max_ops=max_ops, thresholds=thresholds, rank=rank, note=note
    )
    app.run()
    code = app.return_code or 0
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
