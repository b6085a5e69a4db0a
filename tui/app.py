"""OptDbgApp: drive a Session one op at a time with keys.

The Session is injected (or loaded from a scenario spec off the UI thread). Torch work
runs in a thread worker, one job at a time from a queue; results come back as messages
carrying detached data, which the app hands down to the panels' reactives.
"""

from __future__ import annotations

import io
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rich.text import Text
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Container, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Static, Tab, Tabs

from optdbg.engine import fmt
from optdbg.engine.render import cancel_renders

from .dialogs import BreakpointDialog, DiagnosticsScreen, HyperDialog, RunningScreen
from .graphview import GraphPanel
from .keys import KeyFooter, bindings
from .landscape_view import Landscape, LandscapeScreen
from .runner import EngineThread, run_job
from .screens import HelpScreen, PickerScreen
from .text import literal, printable
from .widgets import (
    HistoryPanel,
    LogPanel,
    LossPanel,
    ParamsPanel,
    StatusBar,
    UpdatePanel,
    describe_update,
    nothing_done,
)

if TYPE_CHECKING:
    from optdbg.engine.breakpoints import RunResult
    from optdbg.engine.events import Event
    from optdbg.engine.graph import BackwardStep, Graph
    from optdbg.engine.session import Session, UpdateDetail
    from optdbg.engine.snapshot import Snapshot

PANELS = ("params", "update", "graph", "loss", "log", "history")
PANEL_TITLES = {
    "params": "Params",
    "update": "Update",
    "graph": "Graph",
    "loss": "Loss",
    "log": "Log",
    "history": "History",
}
SESSION_ACTIONS = (
    "undo",
    "right",
    "continue",
    "edit_lr",
    "edit_hyper",
    "diagnostics",
    "landscape",
    "landscape_slice",
    "export_landscape",
)
"""Actions that need a loaded session (hidden from the footer otherwise)."""
HISTORY_WINDOW = 400
"""The history panel lists this many ops around the current point."""
OPS = ("forward", "backward", "step", "zero_grad", "next", "iteration")
MAX_QUEUE = 16
PROGRESS_S = 1.0
"""While continue runs, the live counters and loss plot are redrawn this often: each frame
re-renders the whole screen behind the running overlay (Textual's translucent modal), and
the UI thread's frames take the GIL from the loop."""
TOAST_CHARS = {True: 72, False: 240}
"""The longest toast message on a compact / wide screen (the log keeps the whole text)."""
COMPACT_WIDTH, COMPACT_HEIGHT = 110, 32
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""Control characters, which XML forbids: never written into a saved SVG."""


def _setter(group: int, key: str, value: Any) -> Callable[[Session], list[Event]]:
    return lambda session: [session.set_hyper(group, key, value)]


def _events_and_note(outcome: Any) -> tuple[list[Event], Note | None]:
    """What a job's outcome adds to the log: its events, and a line of its own."""
    if isinstance(outcome, Note):
        return [], outcome
    if isinstance(outcome, Continued):
        r = outcome.result
        events = [e for e in r.events if e.warnings or e.error] + list(r.events[-1:])
        severity = "warning" if r.reason in ("condition", "error", "non-finite") else "information"
        return _unique(events), Note(
            f"continue: {fmt.plural(r.iterations, 'iteration')}, stopped: {r.message}", severity
        )
    if isinstance(outcome, SlowMotion):
        return [outcome.event], None
    if isinstance(outcome, Diagnosed | Landscape):
        return [], None
    return list(outcome or []), None


def _unique(events: list[Event]) -> list[Event]:
    """Events in order without repeats (by index)."""
    seen: set[int] = set()
    return [e for e in events if not (e.index in seen or seen.add(e.index))]  # type: ignore[func-returns-value]


def _load_error_text(spec: str | Path, error: BaseException) -> str:
    from optdbg.engine import ScenarioError
    from optdbg.engine.overrides import OverrideError

    if isinstance(error, ScenarioError | OverrideError):
        return str(error)
    return f"{spec}: unexpected {type(error).__name__} while loading: {error}"


def _display_path(path: Path) -> str:
    from optdbg.engine.builtins import builtin_dir

    if path.parent.resolve() == builtin_dir().resolve():
        return f"built-in scenario {path.stem}"
    return str(path)


@dataclass(frozen=True)
class Note:
    """A line for the log and a toast: the outcome of a job that is not an op."""

    text: str
    severity: Literal["information", "warning", "error"] = "information"


def export_png(session: Session) -> Note:
    """Write the current graph to `<scenario>-op<N>.png` in the working directory."""
    from optdbg.engine.export import ExportError, default_path, export_graph

    graph = session.graph()
    if graph is None:
        return Note("nothing to export yet: press f to build the graph first", "warning")
    path = default_path(session.scenario.name, len(session.events))
    try:
        result = export_graph(graph, path, title=session.scenario.title)
    except ExportError as e:
        return Note(f"export failed: {e}", "error")
    text = result.message if not result.ok else f"graph exported: {path.resolve()}"
    return Note(text, "information" if result.ok else "warning")


@dataclass(frozen=True)
class Pulse:
    """The counters of a running session: cheap to copy out several times a second."""

    op_count: int
    step_count: int
    iteration: int
    epoch: int
    batch: int
    loss: float | None
    losses: tuple[float, ...]
    next_op: str
    lrs: tuple[Any, ...]
    """Each group's "lr" as the scenario set it (any value: None too)."""

    @classmethod
    def of(cls, session: Session) -> Pulse:
        groups = session.optimizer.param_groups
        return cls(
            op_count=len(session.events),
            step_count=session.step_count,
            iteration=session.forward_count,
            epoch=session.epoch,
            batch=session.batch,
            loss=session.loss_value,
            losses=tuple(session.loss_history),
            next_op=session.next_op,
            lrs=tuple(g["lr"] for g in groups if "lr" in g),
        )

    def applied_to(self, snap: Snapshot) -> Snapshot:
        """The last full snapshot with these counters (for the status line)."""
        groups = tuple({**g, "lr": lr} for g, lr in zip(snap.groups, self.lrs, strict=False))
        return replace(
            snap,
            op_count=self.op_count,
            step_count=self.step_count,
            iteration=self.iteration,
            epoch=self.epoch,
            batch=self.batch,
            loss=self.loss,
            loss_history=self.losses,
            next_op=self.next_op,
            groups=groups or snap.groups,
        )


@dataclass(frozen=True)
class Diagnosed:
    """The outcome of the diagnostics job: every finding so far, grouped by code."""

    diagnoses: list[Any]
    ops: int


@dataclass(frozen=True)
class Continued:
    """The outcome of `continue`: why it stopped, and the ops it performed."""

    result: RunResult


@dataclass(frozen=True)
class SlowMotion:
    """The outcome of a slow-motion backward: the op's event and the recorded steps."""

    event: Event
    steps: tuple[BackwardStep, ...]


@dataclass(frozen=True)
class View:
    """Everything the panels show after a job, detached from the session."""

    snapshot: Snapshot
    detail: UpdateDetail | None
    graph: Graph | None
    selected: str | None
    values: str = ""
    """Full values of the selected parameter when it is too large for the table."""
    timeline: tuple[Any, ...] = ()
    """The history's entries around the current point (undone ones included)."""
    future_losses: tuple[float, ...] = ()
    """Losses of undone forwards: what redo would replay."""


class PanelLayout:
    """The six panels' layout, shared by the scenario and the trace apps: all at once on a
    wide terminal, one at a time behind tabs on a compact one. The app declares the
    reactives `compact` and `panel` and composes `Tabs` and the panels by id."""

    compact: bool
    panel: str

    def on_resize(self, event: Any) -> None:
        self._fit(event.size.width, event.size.height)

    def _fit(self, width: int, height: int) -> None:
        self.compact = width < COMPACT_WIDTH or height < COMPACT_HEIGHT

    def watch_compact(self, compact: bool) -> None:
        self.set_class(compact, "-compact")  # type: ignore[attr-defined]
        self._show_panel()

    def watch_panel(self, panel: str) -> None:
        self._show_panel()
        tabs = self.query_one(Tabs)  # type: ignore[attr-defined]
        if tabs.active != f"tab-{panel}":
            tabs.active = f"tab-{panel}"

    def _show_panel(self) -> None:
        for name in PANELS:
            self.query_one(f"#{name}").set_class(name == self.panel, "-active")  # type: ignore[attr-defined]

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        if event.tab.id:
            self.panel = event.tab.id.removeprefix("tab-")


class OptDbgApp(PanelLayout, App[None]):
    """Step through a PyTorch optimization loop one operation at a time."""

    CSS_PATH = "app.tcss"
    TITLE = "optdbg"
    BINDINGS = [
        *bindings(),
        *(
            Binding(str(i + 1), f"panel('{p}')", PANEL_TITLES[p], show=False)
            for i, p in enumerate(PANELS)
        ),
    ]

    compact: reactive[bool] = reactive(False)
    """True on small terminals: one panel at a time, chosen with tabs."""
    panel: reactive[str] = reactive("params")
    """The panel shown in compact mode."""

    class Loaded(Message):
        """A scenario was loaded (in a worker) into a new session."""

        def __init__(self, session: Session, view: View, generation: int) -> None:
            super().__init__()
            self.session = session
            self.view = view
            self.generation = generation

    class LoadFailed(Message):
        """The scenario could not be loaded; `text` is the clear error message."""

        def __init__(self, text: str, generation: int) -> None:
            super().__init__()
            self.text = text
            self.generation = generation

    class Progress(Message):
        """`continue` is running: the latest op and the counters (a few times a second)."""

        def __init__(self, event: Event, pulse: Pulse, generation: int) -> None:
            super().__init__()
            self.event = event
            self.pulse = pulse
            self.generation = generation

    class JobDone(Message):
        """A queued job finished: what it returned (events, a Note, Continued, SlowMotion,
        Diagnosed) and the new view (None when the job failed)."""

        def __init__(self, outcome: Any, view: View | None, generation: int) -> None:
            super().__init__()
            self.outcome = outcome
            self.view = view
            self.generation = generation

    def __init__(
        self,
        session: Session | None = None,
        *,
        scenario: str | Path | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self.scenario = scenario if session is None else session.scenario.path
        self.overrides = dict(overrides or (session.scenario.overrides if session else {}))
        """The `--set` values, applied again on reload (not to another picked scenario)."""
        self.selected: str | None = None
        self.view: View | None = None
        self.load_error: str | None = None
        self._queue: deque[tuple[str, Callable[[Session], Any]]] = deque()
        self._busy = False
        self._job_label = ""
        self._generation = 0
        self._engine: EngineThread | None = EngineThread() if session is not None else None
        self._replay: tuple[int, tuple[BackwardStep, ...], list[Event], View] | None = None
        self._stop: threading.Event | None = None
        self._cancel_shown = False
        self._plotted = 0.0
        self._break_condition = ""
        self._break_on_warning = True
        self._held: dict[str, Any] | None = None
        self._last_toast: tuple[float, dict[str, Any]] | None = None
        if session is not None:
            session.capture_graph = True

    # ------------------------------------------------------------- layout

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield Tabs(*(Tab(PANEL_TITLES[p], id=f"tab-{p}") for p in PANELS), id="tabs")
        with Container(id="panels"):
            yield ParamsPanel(id="params", classes="panel")
            yield GraphPanel(id="graph", classes="panel")
            yield UpdatePanel(id="update", classes="panel")
            yield LossPanel(id="loss", classes="panel")
            yield HistoryPanel(id="history", classes="panel")
            yield LogPanel(id="log", classes="panel", markup=False, wrap=True, min_width=20)
        with VerticalScroll(id="error"):
            yield Static(id="error-text")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.begin_capture_print(self.query_one(LogPanel))  # the scenario's prints: the log
        self._fit(self.size.width, self.size.height)
        self.set_interval(0.25, self._tick)
        self.theme_changed_signal.subscribe(self, self._retheme)
        if self.session is not None:
            self._enqueue("start", lambda _s: None)
        elif self.scenario is not None:
            self.load(self.scenario)
        else:
            self.pick()

    def _retheme(self, _theme: object) -> None:
        """Panels resolve theme colours when they build their text: rebuild it."""
        if self.view is not None:
            self._apply(self.view)
            self.query_one(GraphPanel).graph = self.view.graph

    def _tick(self) -> None:
        if self._busy and not isinstance(self.screen, RunningScreen):
            self._show_activity()  # while continue runs, its overlay says it (fewer frames)
        self._sync_cancel()
        if self._held is not None and not self._dialog_open():
            held, self._held = self._held, None
            self.notify(**held)

    # ------------------------------------------------------------- notifications

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: Literal["information", "warning", "error"] = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """One toast at a time, short, out of the way: on a compact screen over the status
        line's right half, on a wide one over the log (which keeps every message whole).
        While a dialog is open the newest toast waits for it to close. The text is shown as
        it is: messages quote the scenario and the user (a condition `'[/]' in warnings`,
        an error about `[/data/shard-3]`), never markup nor control codes."""
        message, title, markup = printable(message), printable(title, one_line=True), False
        limit = TOAST_CHARS[self.compact]
        if len(message) > limit:
            message = message[: limit - 1].rstrip() + "…"
        held = {"title": title, "severity": severity, "timeout": timeout, "markup": markup}
        if self._dialog_open():
            self._held = {"message": message, **held}
            return
        self.clear_notifications()
        self._last_toast = (time.monotonic(), {"message": message, **held})
        super().notify(message, **held)

    def push_screen(self, screen: Any, *args: Any, **kwargs: Any) -> Any:
        """A dialog opens: the toast on screen waits for it to close (Textual would show it
        again on the dialog)."""
        if not isinstance(screen, RunningScreen) and self._last_toast is not None:
            shown_at, toast = self._last_toast
            if time.monotonic() - shown_at < (toast["timeout"] or self.NOTIFICATION_TIMEOUT):
                self._held = toast
            self._last_toast = None
            self.clear_notifications()
        return super().push_screen(screen, *args, **kwargs)

    def _dialog_open(self) -> bool:
        """A dialog (help, diagnose, an editor, the picker) is in front of the panels."""
        return len(self.screen_stack) > 1 and not isinstance(self.screen, RunningScreen)

    def _sync_cancel(self) -> None:
        """Show or hide escape in the footer when that changes (on a timer, and when idle)."""
        cancellable = self._cancellable()
        if cancellable != self._cancel_shown:
            self._cancel_shown = cancellable
            self.refresh_bindings()

    def _cancellable(self) -> bool:
        """Offer escape when an op has run long enough to need it, or during a replay."""
        elapsed = self._engine.elapsed if self._engine is not None else None
        return self._replay is not None or (self._busy and (elapsed or 0) >= 0.5)

    def action_panel(self, name: str) -> None:
        """Show a panel (compact screens) and move the focus into it, so its own keys work."""
        self.panel = name
        panel = self.query_one(f"#{name}")
        target = (
            panel if panel.focusable else next((w for w in panel.query("*") if w.focusable), None)
        )
        if target is not None:
            target.focus()

    # ------------------------------------------------------------- loading

    def pick(self) -> None:
        from optdbg.engine.builtins import builtin_names, builtin_title

        choices = [(n, *builtin_title(n)) for n in builtin_names()]

        def chosen(name: str | None) -> None:
            if name is None:
                if self.session is None and self.scenario is None:
                    self.exit()
                return
            self.scenario = name
            self.overrides = {}
            self.load(name)

        self.push_screen(PickerScreen(choices), chosen)

    def load(self, spec: str | Path) -> None:
        """Load a scenario on a fresh engine thread (the old one is let go)."""
        if self._engine is not None:
            self._engine.cancel()  # a Python-level op that hangs must not spin on forever
            self._engine.stop()
        self._generation += 1
        generation = self._generation
        self._engine = EngineThread()
        self._queue.clear()
        self._busy = True
        self._job_label = "loading the scenario (importing torch)"
        self._show_activity()
        self.refresh_bindings()

        overrides = self.overrides

        def job() -> Session:
            session = self.open_session(spec, overrides)
            session.capture_graph = True  # saved tensors and gradient flow for the graph panel
            return session

        def done(session: Any, error: BaseException | None) -> None:
            if error is not None:
                self.post_message(self.LoadFailed(_load_error_text(spec, error), generation))
            else:
                view = self._capture(session, None)
                self.post_message(self.Loaded(session, view, generation))

        self._engine.submit(run_job(job, done))

    def open_session(self, spec: str | Path, overrides: dict[str, Any]) -> Session:
        """Load the scenario into a new session (on the engine thread)."""
        from optdbg.engine import Session

        return Session.open(spec, overrides=overrides)

    def on_opt_dbg_app_loaded(self, message: Loaded) -> None:
        if message.generation != self._generation:
            return
        self.session = message.session
        self.scenario = message.session.scenario.path
        self.load_error = None
        self._busy = False
        self.remove_class("-failed")
        log = self.query_one(LogPanel)
        log.clear()
        log.note(f"loaded {_display_path(message.session.scenario.path)}")
        self.query_one(StatusBar).last_event = None
        self._apply(message.view)
        self.refresh_bindings()
        self._next_job()

    def on_opt_dbg_app_load_failed(self, message: LoadFailed) -> None:
        if message.generation != self._generation:
            return
        self.session = None
        self.load_error = message.text
        self._queue.clear()
        self._busy = False
        self.add_class("-failed")
        self.query_one("#error-text", Static).update(
            Text.assemble(
                ("The scenario could not be loaded\n\n", "bold"),
                literal(message.text),
                ("\n\nEdit the file, then press r to reload.", "italic"),
            )
        )
        status = self.query_one(StatusBar)
        status.activity = "load failed: see below, press r after fixing the file"
        status.snapshot = None
        self.refresh_bindings()

    # ------------------------------------------------------------- jobs

    def action_op(self, op: str) -> None:
        self._enqueue(op, lambda s: s.perform(op))

    def _enqueue(self, label: str, job: Callable[[Session], Any]) -> None:
        if self._replay is not None:
            self._end_replay()
        if len(self._queue) >= MAX_QUEUE:
            self.notify(f"{label} ignored: {MAX_QUEUE} ops already queued", severity="warning")
            return
        self._queue.append((label, job))
        if not self._busy and self.session is not None:
            self._next_job()
        else:
            self._show_activity()

    def _next_job(self) -> None:
        if not self._queue or self.session is None or self._engine is None:
            self._busy = False
            self._show_activity()
            self._sync_cancel()
            return
        label, job = self._queue.popleft()
        jobs = [job]
        while label in OPS and self._queue and self._queue[0][0] in OPS:
            jobs.append(self._queue.popleft()[1])  # keys faster than ops: one frame for all
        self._busy = True
        self._job_label = label if len(jobs) == 1 else f"{label} (+{len(jobs) - 1} queued ops)"
        self._show_activity()
        session, selected, generation = self.session, self.selected, self._generation

        def work() -> tuple[Any, View]:
            if len(jobs) == 1:
                return job(session), self._capture(session, selected)
            events = [event for j in jobs for event in j(session)]
            return events, self._capture(session, selected)

        def done(result: Any, error: BaseException | None) -> None:
            if error is not None:  # an engine bug or a cancel outside an op: never fatal
                note = Note(f"{label} failed: {type(error).__name__}: {error}", "error")
                self.post_message(self.JobDone(note, None, generation))
            else:
                outcome, view = result
                self.post_message(self.JobDone(outcome, view, generation))

        self._engine.submit(run_job(work, done))

    def _show_activity(self) -> None:
        queued = f"  ({len(self._queue)} queued)" if self._queue else ""
        text = ""
        if self._busy:
            elapsed = self._engine.elapsed if self._engine is not None else None
            text = f"{self._job_label}…"
            if elapsed is not None and elapsed >= 0.5:
                text += f" {elapsed:.1f} s  (escape: cancel)"
        self.query_one(StatusBar).activity = (text + queued).strip()

    def action_cancel(self) -> None:
        if self._replay is not None:
            self._end_replay()
            return
        engine = self._engine
        if engine is None or not self._busy:
            return
        self._queue.clear()
        if not engine.cancel():
            return
        self.notify(f"cancelling {self._job_label}…", timeout=3)

        def still_running() -> None:
            if self._busy and self._engine is engine and (engine.elapsed or 0) > 2:
                self.notify(
                    f"{self._job_label} does not respond to cancel (it is inside native code). "
                    "Press r to reload a fresh session or q to quit.",
                    severity="error",
                    timeout=15,
                )

        self.set_timer(2.5, still_running)

    def _capture(self, session: Session, selected: str | None) -> View:
        from optdbg.engine.snapshot import shared_views

        with shared_views():
            snap = session.snapshot()
            names = [p.name for p in snap.params]
            name = selected if selected in names else (names[0] if names else None)
            detail = session.update_detail(name) if name else None
            param = snap.param(name) if name else None
            large = param is not None and not param.value.is_small
            values = session.values_text(name) if large and name else ""
            here = snap.op_count
            window = session.timeline(here - HISTORY_WINDOW, here + HISTORY_WINDOW // 4)
            future = tuple(
                e.loss
                for e in session.timeline(here)
                if e.undone and e.op == "forward" and e.loss is not None
            )
            return View(snap, detail, session.graph(), name, values, window, future)

    def on_opt_dbg_app_job_done(self, message: JobDone) -> None:
        if message.generation != self._generation:
            return
        outcome, view = message.outcome, message.view
        if isinstance(outcome, SlowMotion) and outcome.steps and view is not None:
            self._busy = False  # the engine is idle: the replay only shows what it recorded
            self._show_activity()
            self._start_replay(outcome.steps, [outcome.event], view)
            return
        if isinstance(outcome, Continued) and isinstance(self.screen, RunningScreen):
            self.screen.dismiss()  # continue stopped by itself
        self._finish(*_events_and_note(outcome), view)
        if isinstance(outcome, Diagnosed):
            self.push_screen(DiagnosticsScreen(outcome.diagnoses, outcome.ops))
        if isinstance(outcome, Landscape):
            if isinstance(self.screen, LandscapeScreen):
                self.pop_screen()
            self.push_screen(LandscapeScreen(outcome))

    def _finish(self, events: list[Event], note: Note | None, view: View | None) -> None:
        log = self.query_one(LogPanel)
        if note is not None:
            style = {"error": "bold red", "warning": "bold yellow"}.get(note.severity, "")
            log.note(note.text, style=style)
            self.notify(note.text, severity=note.severity, timeout=8)
        log.add_events(events)
        for event in events:
            self._alert(event)
        if events:
            self.query_one(StatusBar).last_event = events[-1]
        if view is not None:
            self._apply(view)
        self._busy = False
        self._next_job()

    def _alert(self, event: Event) -> None:
        """One toast per op: its error if it failed, else its warnings (the log has all)."""
        if event.warnings and not event.error:
            codes = ", ".join(w.code for w in event.warnings)
            more = len(event.warnings) - 1
            extra = f" (+{more} more in the log)" if more else ""
            first = event.warnings[0].message
            self.notify(first + extra, title=f"⚠ {codes}", severity="warning", timeout=8)
        if nothing_done(event):
            assert event.error is not None
            self.notify(event.error.message, timeout=3)
        elif event.error:
            self.notify(
                f"{event.error.message.splitlines()[0][:200]}\n{event.error.explanation}",
                title=f"{event.op} refused: {event.error.type}",
                severity="error",
                timeout=10,
            )

    def _apply(self, view: View) -> None:
        """Hand a view down to the panels, in one refresh."""
        with self.batch_update():
            self.view = view
            self.query_one(StatusBar).snapshot = view.snapshot
            self.query_one(ParamsPanel).snapshot = view.snapshot
            self.query_one(UpdatePanel).lines = describe_update(view.detail, view.selected)
            graph = self.query_one(GraphPanel)
            if graph.graph is not view.graph:
                graph.graph = view.graph
            self.query_one(LossPanel).evals = view.snapshot.eval_losses
            self.query_one(LossPanel).history = (view.snapshot.loss_history, view.future_losses)
            self.query_one(HistoryPanel).timeline = view.timeline
            self._show_details(view)

    def _show_details(self, view: View) -> None:
        p = view.snapshot.param(view.selected) if view.selected else None
        panel = self.query_one(ParamsPanel)
        if p is None:
            panel.details = ""
            return
        lines = [
            f"{p.name}  shape {fmt.shape(p.value.shape)}  {p.value.dtype}  {p.value.device}",
            f"value: {fmt.tensor(p.value, limit=64)}",
            f"grad:  {fmt.tensor(p.grad, limit=64)}"
            + (f"   (sum of {p.accumulated} backward passes)" if p.accumulated > 1 else ""),
            f"Δ:     {fmt.tensor(p.last_update, limit=64)}",
        ]
        for key, value in p.state.items():
            shown = fmt.tensor(value, limit=16) if hasattr(value, "shape") else fmt.num(value)
            lines.append(f"state {key}: {shown}")
        if view.values:
            lines += ["", view.values]
        panel.details = "\n".join(lines)

    def on_params_panel_selected(self, message: ParamsPanel.Selected) -> None:
        if message.name == self.selected:
            return
        self.selected = message.name
        if self.session is not None and not (self._queue and self._queue[-1][0] == "select"):
            self._enqueue("select", lambda s: None)

    def on_params_panel_follow(self, message: ParamsPanel.Follow) -> None:
        panel = self.query_one(GraphPanel)
        graph = panel.graph
        leaf = graph.leaf(message.name) if graph is not None else None
        if leaf is None:
            why = "press f first" if graph is None else "the loss does not use it"
            self.notify(f"{message.name} is not in the graph: {why}", severity="warning")
            return
        self.panel = "graph"
        panel.reveal(leaf)
        panel.view.focus()

    # ------------------------------------------------------------- actions

    def action_modules(self) -> None:
        """Group the graph's nodes by module (or not), wherever the focus is."""
        self.query_one(GraphPanel).view.action_toggle_modules()

    def action_reload(self) -> None:
        if self.scenario is None:
            self.pick()
            return
        self._queue.clear()
        self.load(self.scenario)

    def action_export(self) -> None:
        self._enqueue("export", export_png)

    def action_save_screen(self) -> None:
        """Save the screen as SVG next to the graph export, `<scenario>-op<N>-screen.svg`
        (a free name, written atomically); in a browser (`optdbg serve`) it downloads too."""
        from optdbg.engine.export import ExportError, default_path, write_atomic

        scenario = self.session.scenario.name if self.session is not None else "optdbg"
        ops = len(self.session.events) if self.session is not None else 0
        path = default_path(scenario, ops, ext="-screen.svg")
        svg = _CONTROL.sub("", self.export_screenshot(title=f"optdbg: {scenario}"))
        try:
            write_atomic(path, svg.encode("utf-8"))
        except (ExportError, OSError) as e:
            self.notify(f"cannot save the screen: {e}", severity="error")
            return
        if self.is_web:
            self.deliver_text(io.StringIO(svg), save_filename=path.name, mime_type="image/svg+xml")
        self.query_one(LogPanel).note(f"screen saved: {path.resolve()}")
        self.notify(f"screen saved: {path.name} in {path.resolve().parent}")

    # ------------------------------------------------------------- loss landscape

    def landscape_runs(self, session: Session) -> tuple[list[Session], list[str]]:
        """The sessions whose trajectories the landscape draws, and their labels."""
        return [session], [session.scenario.name]

    def action_landscape(self) -> None:
        from .landscape_view import compute

        if isinstance(self.screen, LandscapeScreen):
            self.pop_screen()
            return
        width, height = self.size.width, max(5, self.size.height - 4)

        def job(session: Session) -> Any:
            sessions, labels = self.landscape_runs(session)
            return compute(sessions, labels, width, height, session.scenario.title)

        self._enqueue("loss landscape", job)

    def action_landscape_slice(self) -> None:
        from .landscape_view import compute_slice

        def job(session: Session) -> Any:
            return compute_slice(session, session.scenario.name, session.scenario.title)

        self._enqueue("2-D slice of the landscape", job)

    def action_export_landscape(self) -> None:
        from .landscape_view import export

        def job(session: Session) -> Note:
            sessions, labels = self.landscape_runs(session)
            return export(sessions, labels, session.scenario.title, len(session.events))

        self._enqueue("export the landscape", job)

    # ------------------------------------------------------------- slow motion

    def action_slow_backward(self) -> None:
        if self._replay is not None:
            self._advance_replay()
            return
        self._enqueue("backward (slow motion)", lambda s: SlowMotion(*s.backward_steps()))

    def _start_replay(
        self, steps: tuple[BackwardStep, ...], events: list[Event], view: View
    ) -> None:
        """Show the recorded backward node by node; the panels update when it ends."""
        graph = self.query_one(GraphPanel)
        graph.graph = view.graph
        self._replay = (0, steps, events, view)
        self.panel = "graph"
        graph.step = (0, steps)
        graph.view.focus()
        self._sync_cancel()

    def _advance_replay(self) -> None:
        assert self._replay is not None
        index, steps, events, view = self._replay
        if index + 1 >= len(steps):
            self._end_replay()
            return
        self._replay = (index + 1, steps, events, view)
        self.query_one(GraphPanel).step = (index + 1, steps)

    def _end_replay(self) -> None:
        if self._replay is None:
            return
        _, _, events, view = self._replay
        self._replay = None
        self.query_one(GraphPanel).step = None
        self._finish(events, None, view)
        self.refresh_bindings()

    def action_right(self) -> None:
        if self._replay is not None:
            self._advance_replay()
        else:
            self.action_redo()

    # ------------------------------------------------------------- time travel

    def action_undo(self) -> None:
        self._enqueue("undo", lambda s: [s.undo()])

    def action_redo(self) -> None:
        self._enqueue("redo", lambda s: [s.redo()])

    def on_history_panel_jump(self, message: HistoryPanel.Jump) -> None:
        self._enqueue(f"go to op {message.index}", lambda s: [s.goto(message.index)])

    def action_continue(self) -> None:
        """Run whole iterations, the panels updating live, until a key or a breakpoint."""
        from optdbg.engine.breakpoints import AnyOf, WarningFires, parse_condition

        conditions = [WarningFires()] if self._break_on_warning else []
        if self._break_condition:
            conditions.append(parse_condition(self._break_condition))
        condition = AnyOf(*conditions) if conditions else None
        stop = threading.Event()
        self._stop = stop
        generation = self._generation

        def job(session: Session) -> Continued:
            def progress(event: Event) -> None:
                self.post_message(self.Progress(event, Pulse.of(session), generation))

            # graph capture costs more than the op on big models: off while running,
            # the graph of the last loss is extracted once when it stops
            capture, session.capture_graph = session.capture_graph, False
            try:
                return Continued(session.run_until(condition, None, stop, progress, PROGRESS_S))
            finally:
                session.capture_graph = capture

        self._enqueue("continue", job)
        self.push_screen(RunningScreen(), lambda _: stop.set())

    def on_opt_dbg_app_progress(self, message: Progress) -> None:
        """Live while running: the status line, the loss plot and the overlay; the other
        panels catch up when it stops (a full view each time would slow the loop)."""
        if message.generation != self._generation or not self._busy or self.view is None:
            return
        pulse = message.pulse
        with self.batch_update():  # one frame for the status line, the plot and the overlay
            status = self.query_one(StatusBar)
            status.last_event = message.event
            status.snapshot = pulse.applied_to(self.view.snapshot)
            now = time.monotonic()
            if now - self._plotted >= PROGRESS_S:  # plotting is the costly part
                self._plotted = now
                self.query_one(LossPanel).history = (pulse.losses, ())
            if isinstance(self.screen, RunningScreen):
                self.screen.show(
                    f"running: op {pulse.op_count} · step {pulse.step_count} · "
                    f"loss {fmt.num(pulse.loss)}"
                )

    def action_diagnostics(self) -> None:
        from optdbg.engine.pitfalls import diagnose

        self._enqueue("diagnostics", lambda s: Diagnosed(diagnose(s.events), len(s.events)))

    def action_edit_lr(self) -> None:
        self._edit_hyper("lr")

    def action_edit_hyper(self) -> None:
        self._edit_hyper(None)

    def _edit_hyper(self, only: str | None) -> None:
        if self.view is None:
            return

        def chosen(changes: dict[tuple[int, str], Any] | None) -> None:
            for (group, key), value in (changes or {}).items():
                self._enqueue(f"set {key}", _setter(group, key, value))

        self.push_screen(HyperDialog(self.view.snapshot.groups, only), chosen)

    def action_breakpoint(self) -> None:
        from optdbg.engine.breakpoints import NAMES

        def chosen(result: tuple[str, bool] | None) -> None:
            if result is None:
                return
            self._break_condition, self._break_on_warning = result
            what = self._break_condition or "no condition"
            extra = " or any warning" if self._break_on_warning else ""
            self.notify(f"continue (c) stops at: {what}{extra}")

        dialog = BreakpointDialog(self._break_condition, self._break_on_warning, NAMES)
        self.push_screen(dialog, chosen)

    async def action_quit(self) -> None:
        """Quit at once, even while an op runs: a hanging forward is cancelled first."""
        if self._engine is not None and self._busy:
            self._engine.cancel()
        cancel_renders()  # a graph export still laying out must not outlive the app
        self.exit()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self._cancellable()
        if action == "modules":
            return not self.compact or self.panel == "graph"
        if action in SESSION_ACTIONS and self.session is None:
            return False
        if action in ("op", "export", "slow_backward") and self.session is None:
            return self._busy  # while loading, op keys are queued; after a failure, hidden
        if parameters == ("evaluate",) and self.session is not None:
            return self.session.scenario.evaluation is not None  # `v` only where it evaluates
        return True

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for op in OPS:
            yield SystemCommand(
                op.replace("_", " ").capitalize(),
                f"Perform {op} on the session",
                lambda op=op: self.action_op(op),  # type: ignore[misc]
            )
        yield SystemCommand("Reload scenario", "Load the scenario file again", self.action_reload)
        yield SystemCommand("Export graph", "Write the graph to a PNG file", self.action_export)
        yield SystemCommand(
            "Save screen as SVG",
            "Write what the screen shows to <scenario>-op<N>-screen.svg",
            self.action_save_screen,
        )
        yield SystemCommand("Help", "Keys and what each op does", self.action_help)
        yield SystemCommand("Open a built-in scenario", "Choose from the built-ins", self.pick)
