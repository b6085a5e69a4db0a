"""OptDbgApp: drive a Session one op at a time with keys, through the debugger façade.

The app sends typed commands (`optdbg.engine.debugger`) to its `Debugger`, injected or
loaded from a scenario spec off the UI thread. They run on the engine thread, one at a
time from a queue; each outcome comes back as a message of its own (one class per outcome,
carrying detached data), which the app hands down to the panels' reactives.
"""

from __future__ import annotations

import gc
import io
import re
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeGuard, TypeVar

from rich.text import Text
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Container, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static, Tab, Tabs

from optdbg.engine import debugger as dbg
from optdbg.engine import fmt
from optdbg.engine.render import cancel_renders

from .dialogs import BreakpointDialog, DiagnosticsScreen, HyperDialog
from .graphview import GraphPanel
from .keys import KeyFooter, bindings
from .landscape_view import LandscapeScreen
from .runner import EngineThread, run_job
from .running import RunningBanner
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
    failures_toast,
    nothing_done,
)

if TYPE_CHECKING:
    from optdbg.engine.breakpoints import RunResult
    from optdbg.engine.debugger.facade import Debugger
    from optdbg.engine.events import Event
    from optdbg.engine.graph import BackwardStep
    from optdbg.engine.session import Session

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
OPS = ("forward", "backward", "step", "zero_grad", "next", "iteration")
"""Ops queued back to back run as one `Batch` (keys typed faster than ops run)."""
MAX_QUEUE = 16
PROGRESS_S = 1.0
"""While continue runs, the live counters and loss plot are redrawn this often: the UI
thread's frames take the GIL and a core from the loop."""
TOAST_CHARS = {True: 72, False: 240}
"""The longest toast message on a compact / wide screen (the log keeps the whole text)."""
COMPACT_WIDTH, COMPACT_HEIGHT = 110, 32
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""Control characters, which XML forbids: never written into a saved SVG."""


def _behind_debugger(engine: Session | Debugger) -> Debugger:
    """An injected engine as a debugger (torch is loaded already: the engine exists)."""
    from optdbg.engine.debugger.facade import Debugger

    return engine if isinstance(engine, Debugger) else Debugger(engine)


def _batchable(command: dbg.Command) -> TypeGuard[dbg.Perform]:
    return isinstance(command, dbg.Perform) and command.op in OPS


def _continued(result: RunResult) -> tuple[list[Event], Note]:
    """What a run adds to the log: the ops that warned or failed, the last, and a line."""
    events = [e for e in result.events if e.warnings or e.error or e.observer_errors]
    events += result.events[-1:]
    stopped = result.reason in ("condition", "error", "non-finite")
    severity: dbg.Severity = "warning" if stopped else "information"
    return _unique(events), Note(
        f"continue: {fmt.plural(result.iterations, 'iteration')}, stopped: {result.message}",
        severity,
    )


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
    """A line for the log and a toast (an outcome that is not an op, in words)."""

    text: str
    severity: Literal["information", "warning", "error"] = "information"


@dataclass(frozen=True)
class Job:
    """A queued command, with the words the status line shows while it runs and, for a
    run, the flag that pauses it."""

    label: str
    command: dbg.Command
    stop: threading.Event | None = None


OutcomeT = TypeVar("OutcomeT")


class OutcomeMessage(Message, Generic[OutcomeT]):
    """A command's outcome, back from the engine thread (`generation`: of which load)."""

    def __init__(self, outcome: OutcomeT, label: str, generation: int) -> None:
        super().__init__()
        self.outcome = outcome
        self.label = label
        self.generation = generation


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
        """A scenario was loaded (on the engine thread), behind a new debugger."""

        def __init__(self, debugger: Debugger, view: dbg.View | None, generation: int) -> None:
            super().__init__()
            self.debugger = debugger
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

        def __init__(self, progress: dbg.Progress, generation: int) -> None:
            super().__init__()
            self.event = progress.event
            self.counters = progress.counters
            self.generation = generation

    # one message per outcome of a command (`optdbg.engine.debugger`)

    class Viewed(OutcomeMessage[dbg.Viewed]):
        """A parameter was selected (or the view refreshed): nothing was performed."""

    class Performed(OutcomeMessage[dbg.Performed]):
        """Ops, undo, redo, a jump or a hyperparameter edit: their events and the view."""

    class Continued(OutcomeMessage[dbg.Continued]):
        """`continue` stopped: why, and the ops it performed."""

    class SlowMotion(OutcomeMessage[dbg.SlowMotion]):
        """A slow-motion backward: its event and the steps to replay."""

    class Diagnosed(OutcomeMessage[dbg.Diagnosed]):
        """Every pitfall found so far."""

    class Landscape(OutcomeMessage[dbg.Landscape]):
        """A loss landscape to draw."""

    class Noted(OutcomeMessage[dbg.Noted]):
        """An export's result, in words."""

    class Exported(OutcomeMessage[dbg.Exported]):
        """The graph's export: where it went, or why nothing was written."""

    class Tabulated(OutcomeMessage[dbg.Tabulated]):
        """Every variant's snapshot (a comparison's table): nothing was performed."""

    class Refused(OutcomeMessage[dbg.Refused]):
        """A command that was not carried out, and why."""

    class Failed(OutcomeMessage[dbg.Failed]):
        """A command that failed unexpectedly (or was cancelled outside an op)."""

    def __init__(
        self,
        engine: Session | Debugger | None = None,
        *,
        scenario: str | Path | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        """The engine is injected (a Session is put behind a Debugger), or loaded from
        `scenario` with `overrides` once the app runs (none: the picker opens)."""
        super().__init__()
        debugger = _behind_debugger(engine) if engine is not None else None
        self.debugger: Debugger | None = debugger
        self.scenario = scenario if debugger is None else debugger.path
        self.overrides = dict(overrides or (debugger.overrides if debugger else {}))
        """The `--set` values, applied again on reload (not to another picked scenario)."""
        self.selected: str | None = None
        self.view: dbg.View | None = None
        self.load_error: str | None = None
        self._queue: deque[Job] = deque()
        self._job_running = False
        self._job_label = ""
        self._generation = 0
        self._engine: EngineThread | None = EngineThread() if debugger is not None else None
        self._replay: tuple[int, tuple[BackwardStep, ...], list[Event], dbg.View] | None = None
        self._banner: RunningBanner | None = None
        """Over the footer while `continue` runs (it has the focus then)."""
        self._run_stop: threading.Event | None = None
        """Set to pause the running `continue`."""
        self._refocus: Widget | None = None
        """What had the focus before the banner took it."""
        self._cancel_shown = False
        self._plotted = 0.0
        self.break_condition = ""
        """Where `continue` stops: a breakpoint expression (the `k` dialog sets it)."""
        self.break_on_warning = True
        """`continue` also stops at the first warning."""
        self._held: dict[str, Any] | None = None
        self._last_toast: tuple[float, dict[str, Any]] | None = None
        self._notes_shown = 0
        """How many of the session's notes (`View.notes`) the log shows."""
        self._graph_error: str | None = None
        """The graph failure the log shows last (`View.graph_error`)."""
        self._frozen = -1
        """The load (generation) whose objects were last moved out of the collector's reach."""

    @property
    def session(self) -> Session | None:
        """The live session behind the debugger, for tests to check against; the app itself
        reads only the views its commands return."""
        return self.debugger.session if self.debugger is not None else None

    @property
    def busy(self) -> bool:
        """A command is running or queued, or a scenario is loading (tests wait for this to
        be False: see tests/pilot_helpers.settle)."""
        return self._job_running or bool(self._queue)

    @property
    def engine(self) -> EngineThread | None:
        """The thread the commands run on (a fresh one at each load)."""
        return self._engine

    @property
    def replay(self) -> tuple[int, tuple[BackwardStep, ...]] | None:
        """The slow-motion replay on screen: the step shown and every step (None: none)."""
        return None if self._replay is None else self._replay[:2]

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
        if self.debugger is not None:
            self._enqueue(dbg.Select(), label="start")
        elif self.scenario is not None:
            self.load(self.scenario)
        else:
            self.pick()

    def on_unmount(self) -> None:
        gc.unfreeze()  # what this app froze (see _freeze_loaded) is collectable again

    def _retheme(self, _theme: object) -> None:
        """Panels resolve theme colours when they build their text: rebuild it."""
        if self.view is not None:
            self._apply(self.view)
            self.query_one(GraphPanel).graph = self.view.graph

    def _tick(self) -> None:
        if self._job_running and self._banner is None:
            self._show_activity()  # while continue runs, its banner says it (fewer frames)
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
        held: dict[str, Any] = {
            "title": title,
            "severity": severity,
            "timeout": timeout,
            "markup": markup,
        }
        if self._dialog_open():
            self._held = {"message": message, **held}
            return
        self.clear_notifications()
        self._last_toast = (time.monotonic(), {"message": message, **held})
        super().notify(message, **held)

    def push_screen(self, screen: Any, *args: Any, **kwargs: Any) -> Any:
        """A dialog opens: the toast on screen waits for it to close (Textual would show it
        again on the dialog)."""
        if self._last_toast is not None:
            shown_at, toast = self._last_toast
            if time.monotonic() - shown_at < (toast["timeout"] or self.NOTIFICATION_TIMEOUT):
                self._held = toast
            self._last_toast = None
            self.clear_notifications()
        return super().push_screen(screen, *args, **kwargs)

    def _dialog_open(self) -> bool:
        """A dialog (help, diagnose, an editor, the picker) is in front of the panels."""
        return len(self.screen_stack) > 1

    def _sync_cancel(self) -> None:
        """Show or hide escape in the footer when that changes (on a timer, and when idle)."""
        cancellable = self._cancellable()
        if cancellable != self._cancel_shown:
            self._cancel_shown = cancellable
            self.refresh_bindings()

    def _cancellable(self) -> bool:
        """Offer escape when an op has run long enough to need it, or during a replay."""
        elapsed = self._engine.elapsed if self._engine is not None else None
        return self._replay is not None or (self._job_running and (elapsed or 0) >= 0.5)

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
                if self.debugger is None and self.scenario is None:
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
        gc.unfreeze()  # the session being replaced can be collected (see _freeze_loaded)
        self._generation += 1
        generation = self._generation
        self._engine = EngineThread()
        self._queue.clear()
        self._job_running = True
        self._job_label = "loading the scenario (importing torch)"
        self._show_activity()
        self.refresh_bindings()

        overrides = self.overrides

        def job() -> tuple[Debugger, dbg.View | None]:
            debugger = self.open_debugger(spec, overrides)
            return debugger, debugger.view()  # in the job: an error here is a load failure

        def done(loaded: Any, error: BaseException | None) -> None:
            if error is not None:
                self.post_message(self.LoadFailed(_load_error_text(spec, error), generation))
            else:
                debugger, view = loaded
                self.post_message(self.Loaded(debugger, view, generation))

        self._engine.submit(run_job(job, done))

    def open_debugger(self, spec: str | Path, overrides: dict[str, Any]) -> Debugger:
        """Load the scenario behind a new debugger (on the engine thread)."""
        from optdbg.engine.debugger.facade import Debugger

        return Debugger.open(spec, overrides)

    def on_opt_dbg_app_loaded(self, message: Loaded) -> None:
        if message.generation != self._generation:
            return
        self.debugger = message.debugger
        self.scenario = message.debugger.path
        self.load_error = None
        self._job_running = False
        self.remove_class("-failed")
        log = self.query_one(LogPanel)
        log.clear()
        log.note(f"loaded {_display_path(message.debugger.path)}")
        self._notes_shown, self._graph_error = 0, None
        self.query_one(StatusBar).last_event = None
        if message.view is not None:
            self._apply(message.view)
        self.refresh_bindings()
        self._next_job()

    def on_opt_dbg_app_load_failed(self, message: LoadFailed) -> None:
        if message.generation != self._generation:
            return
        self.debugger = None
        self.load_error = message.text
        self._queue.clear()
        self._job_running = False
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

    # ------------------------------------------------------------- commands

    def action_op(self, op: str) -> None:
        self._enqueue(dbg.Perform(op))

    def _enqueue(
        self, command: dbg.Command, label: str | None = None, stop: threading.Event | None = None
    ) -> None:
        """Queue a command for the engine thread (`label`: the status line's words for it,
        by default the command's own)."""
        label = command.label if label is None else label
        if self._replay is not None:
            self._end_replay()
        if len(self._queue) >= MAX_QUEUE:
            self.notify(f"{label} ignored: {MAX_QUEUE} ops already queued", severity="warning")
            return
        self._queue.append(Job(label, command, stop))
        if not self._job_running and self.debugger is not None:
            self._next_job()
        else:
            self._show_activity()

    def _next_job(self) -> None:
        debugger = self.debugger
        if not self._queue or debugger is None or self._engine is None:
            self._end_running()  # idle: a run that failed or was refused leaves no banner
            self._job_running = False
            self._show_activity()
            self._sync_cancel()
            return
        job = self._queue.popleft()
        ops = [job.command.op] if _batchable(job.command) else []
        while ops and self._queue and _batchable(first := self._queue[0].command):
            ops.append(first.op)
            self._queue.popleft()
        if len(ops) > 1:  # keys faster than ops: one view for all
            job = Job(f"{job.label} (+{len(ops) - 1} queued ops)", dbg.Batch(tuple(ops)))
        self._job_running = True
        self._job_label = job.label
        self._show_activity()
        generation = self._generation

        def work() -> dbg.Outcome:
            return debugger.execute(
                job.command,
                stop=job.stop,
                on_progress=lambda update: self.progressed(update, generation),
            )

        def done(outcome: Any, error: BaseException | None) -> None:
            if error is not None:  # a cancel outside execute: never fatal
                outcome = dbg.Failed(f"{job.label} failed: {type(error).__name__}: {error}")
            self.post_message(self.message_for(outcome, job.label, generation))

        self._engine.submit(run_job(work, done))

    def message_for(self, outcome: dbg.Outcome, label: str, generation: int) -> Message:
        """The message that carries this outcome to the UI thread (one class per outcome)."""
        kind = getattr(self, type(outcome).__name__)
        message: Message = kind(outcome, label, generation)
        return message

    def progressed(self, update: dbg.Progress | dbg.LockstepProgress, generation: int) -> None:
        """A report from a running `continue` (engine thread): posted as a message."""
        if isinstance(update, dbg.Progress):
            self.post_message(self.Progress(update, generation))

    def _show_activity(self) -> None:
        queued = f"  ({len(self._queue)} queued)" if self._queue else ""
        text = ""
        if self._job_running:
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
        if engine is None or not self._job_running:
            return
        self._queue.clear()
        if not engine.cancel():
            return
        self.notify(f"cancelling {self._job_label}…", timeout=3)

        def still_running() -> None:
            if self._job_running and self._engine is engine and (engine.elapsed or 0) > 2:
                self.notify(
                    f"{self._job_label} does not respond to cancel (it is inside native code). "
                    "Press r to reload a fresh session or q to quit.",
                    severity="error",
                    timeout=15,
                )

        self.set_timer(2.5, still_running)

    # ------------------------------------------------------------- outcomes

    def _current(self, message: OutcomeMessage[Any]) -> bool:
        """The message is about the session loaded now (not one replaced by a reload)."""
        return message.generation == self._generation

    def on_opt_dbg_app_viewed(self, message: Viewed) -> None:
        if self._current(message):
            self._finish([], None, message.outcome.view)

    def on_opt_dbg_app_performed(self, message: Performed) -> None:
        if self._current(message):
            self._finish(list(message.outcome.events), None, message.outcome.view)

    def on_opt_dbg_app_continued(self, message: Continued) -> None:
        if not self._current(message):
            return
        self._end_running()  # continue stopped by itself, or paused
        self._finish(*_continued(message.outcome.result), message.outcome.view)

    def on_opt_dbg_app_slow_motion(self, message: SlowMotion) -> None:
        if not self._current(message):
            return
        outcome = message.outcome
        events = [outcome.event] if outcome.event is not None else []
        if outcome.steps and outcome.view is not None:
            self._job_running = False  # the engine is idle: the replay only shows what it recorded
            self._show_activity()
            if outcome.event is None:
                self.query_one(LogPanel).note(
                    "B: replaying the backward this loss already had (b runs another, which "
                    "PyTorch refuses once the graph is freed)"
                )
            self._start_replay(outcome.steps, events, outcome.view)
            return
        self._finish(events, None, outcome.view)

    def on_opt_dbg_app_diagnosed(self, message: Diagnosed) -> None:
        if self._current(message):
            self._finish([], None, message.outcome.view)
            self.push_screen(
                DiagnosticsScreen(list(message.outcome.diagnoses), message.outcome.ops)
            )

    def on_opt_dbg_app_landscape(self, message: Landscape) -> None:
        if not self._current(message):
            return
        self._finish([], None, message.outcome.view)
        if isinstance(self.screen, LandscapeScreen):
            self.pop_screen()
        self.push_screen(LandscapeScreen(message.outcome))

    def on_opt_dbg_app_noted(self, message: Noted) -> None:
        if self._current(message):
            outcome = message.outcome
            self._finish([], Note(outcome.text, outcome.severity), outcome.view)

    def on_opt_dbg_app_exported(self, message: Exported) -> None:
        if self._current(message):
            outcome = message.outcome
            self._finish([], Note(outcome.text, outcome.severity), outcome.view)

    def on_opt_dbg_app_tabulated(self, message: Tabulated) -> None:
        if self._current(message):
            self._finish([], None, message.outcome.view)

    def on_opt_dbg_app_refused(self, message: Refused) -> None:
        if self._current(message):
            note = Note(f"{message.label} refused: {message.outcome.text}", "error")
            self._finish([], note, message.outcome.view)

    def on_opt_dbg_app_failed(self, message: Failed) -> None:
        if self._current(message):
            self._finish([], Note(message.outcome.text, "error"), message.outcome.view)

    def _finish(self, events: list[Event], note: Note | None, view: dbg.View | None) -> None:
        log = self.query_one(LogPanel)
        if note is not None:
            style = {"error": "bold red", "warning": "bold yellow"}.get(note.severity, "")
            log.note(note.text, style=style)
            self.notify(note.text, severity=note.severity, timeout=8)
        log.add_events(events)
        for event in events:
            self._alert(event)
        failed = failures_toast(events)
        if failed is not None:
            self.notify(failed, title="an observer failed (the op completed)", severity="warning")
        if view is not None:
            self._graph_failure(events, view.graph_error)
        if events:
            self.query_one(StatusBar).last_event = events[-1]
        if view is not None:
            self._apply(view)
        self._job_running = False
        self._next_job()

    def _graph_failure(self, events: list[Event], error: str | None) -> None:
        """A graph that failed outside an op (drawn lazily, e.g. after continue): said once
        in the log and a toast (one that failed in an op is on its event already)."""
        new = error is not None and error != self._graph_error
        self._graph_error = error
        if new and all(error not in e.observer_errors for e in events):
            assert error is not None
            self.query_one(LogPanel).note(error, style="italic red")
            self.notify(error, title="an observer failed", severity="warning")

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

    def _apply(self, view: dbg.View) -> None:
        """Hand a view down to the panels, in one refresh."""
        if self.view is None or self.view.evaluates != view.evaluates:
            self.call_later(self.refresh_bindings)  # `v` shown or hidden
        self._freeze_loaded()
        log = self.query_one(LogPanel)
        for note in view.notes[self._notes_shown :]:
            log.note(note, style="bold yellow")
        self._notes_shown = max(self._notes_shown, len(view.notes))
        with self.batch_update():
            self.view = view
            self.query_one(StatusBar).snapshot = view.snapshot
            self.query_one(ParamsPanel).snapshot = view.snapshot
            self.query_one(UpdatePanel).lines = describe_update(
                view.detail, view.selected, view.snapshot.step_count
            )
            graph = self.query_one(GraphPanel)
            graph.error = view.graph_error
            if graph.graph is not view.graph:
                graph.graph = view.graph
            self.query_one(LossPanel).evals = view.snapshot.eval_losses
            self.query_one(LossPanel).history = (view.snapshot.loss_history, view.future_losses)
            self.query_one(HistoryPanel).timeline = view.timeline
            self._show_details(view)

    def _freeze_loaded(self) -> None:
        """Once a load is on screen, what exists then (torch, Textual, the scenario's model
        and data: some 400,000 objects) lives as long as the session: `gc.freeze` keeps the
        cyclic collector from walking it again at every full collection (one every ~8 keys,
        160 ms on the UI thread with the MLP). `load` unfreezes first, so a replaced
        session's cycles are collected, and so does the app's unmount."""
        if self._frozen != self._generation:
            self._frozen = self._generation
            gc.freeze()

    def _show_details(self, view: dbg.View) -> None:
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
        if self._queue and isinstance(self._queue[-1].command, dbg.Select):
            self._queue.pop()  # only the latest selection matters
        if self.debugger is not None:
            self._enqueue(dbg.Select(message.name))

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
        self._enqueue(dbg.ExportGraph())

    def action_save_screen(self) -> None:
        """Save the screen as SVG next to the graph export, `<scenario>-op<N>-screen.svg`
        (a free name, written atomically); in a browser (`optdbg serve`) it downloads too."""
        from optdbg.engine.export import ExportError, default_path, write_atomic

        snap = self.view.snapshot if self.view is not None and self.debugger else None
        scenario = snap.scenario if snap is not None else "optdbg"
        ops = snap.op_count if snap is not None else 0
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

    def action_landscape(self) -> None:
        if isinstance(self.screen, LandscapeScreen):
            self.pop_screen()
            return
        self._enqueue(dbg.DrawLandscape(self.size.width, max(5, self.size.height - 4)))

    def action_landscape_slice(self) -> None:
        self._enqueue(dbg.DrawSlice())

    def action_export_landscape(self) -> None:
        self._enqueue(dbg.ExportLandscape())

    # ------------------------------------------------------------- slow motion

    def action_slow_backward(self) -> None:
        if self._replay is not None:
            self._advance_replay()
            return
        self._enqueue(dbg.SlowBackward())

    def _start_replay(
        self, steps: tuple[BackwardStep, ...], events: list[Event], view: dbg.View
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
        self._enqueue(dbg.Undo())

    def action_redo(self) -> None:
        self._enqueue(dbg.Redo())

    def on_history_panel_jump(self, message: HistoryPanel.Jump) -> None:
        self._enqueue(dbg.Goto(message.index))

    def action_continue(self) -> None:
        """Run whole iterations, the panels updating live, until a key or a breakpoint."""
        stop = threading.Event()
        until = dbg.ContinueUntil(self.break_condition, self.break_on_warning, None, PROGRESS_S)
        self._enqueue(until, stop=stop)
        self._start_running(stop)

    def _start_running(self, stop: threading.Event) -> None:
        """The banner over the footer, holding the focus until the run ends."""
        self._end_running()
        self._banner, self._run_stop, self._refocus = RunningBanner(), stop, self.focused
        self.add_class("-running")  # the footer hides: it would recompose behind the banner
        self.screen.mount(self._banner)
        self._banner.focus()

    def _end_running(self) -> None:
        banner, self._banner = self._banner, None
        if banner is None:
            return
        self.remove_class("-running")
        banner.remove()
        if self._refocus is not None and self._refocus.is_attached:
            self._refocus.focus()
        self._refocus = None

    @property
    def running(self) -> RunningBanner | None:
        """The banner while `continue` runs (tests read it), else None."""
        return self._banner

    def on_running_banner_paused(self, message: RunningBanner.Paused) -> None:
        if message.banner is self._banner and self._run_stop is not None:
            self._run_stop.set()

    def on_opt_dbg_app_progress(self, message: Progress) -> None:
        """Live while running: the status line, the loss plot and the banner; the other
        panels catch up when it stops (a full view each time would slow the loop)."""
        pulse = message.counters
        if message.generation != self._generation or not self._job_running or self.view is None:
            return
        if pulse is None:  # a headless debugger's report: nothing to draw
            return
        with self.batch_update():  # one frame for the status line, the plot and the banner
            status = self.query_one(StatusBar)
            status.last_event = message.event
            status.snapshot = pulse.applied_to(self.view.snapshot)
            now = time.monotonic()
            if now - self._plotted >= PROGRESS_S:  # plotting is the costly part
                self._plotted = now
                self.query_one(LossPanel).history = (pulse.losses, ())
            if self._banner is not None:
                self._banner.show(
                    f"running: op {pulse.op_count} · step {pulse.step_count} · "
                    f"loss {fmt.num(pulse.loss)}"
                )

    def action_diagnostics(self) -> None:
        self._enqueue(dbg.Diagnose())

    def action_edit_lr(self) -> None:
        self._edit_hyper("lr")

    def action_edit_hyper(self) -> None:
        self._edit_hyper(None)

    def _edit_hyper(self, only: str | None) -> None:
        if self.view is None:
            return
        if not any(self.view.snapshot.groups):  # the manual form: nothing an optimizer holds
            self.notify(
                "updates by hand: reopen with --set NAME=VALUE, e.g. learning_rate=2e-6",
                title="step() is the scenario's own: no optimizer hyperparameters",
                timeout=10,
            )
            return

        def chosen(changes: dict[tuple[int, str], Any] | None) -> None:
            for (group, key), value in (changes or {}).items():
                command = dbg.SetHyper(group, key, value)
                self._enqueue(command, self.hyper_label(command))

        self.push_screen(HyperDialog(self.view.snapshot.groups, only), chosen)

    def hyper_label(self, command: dbg.SetHyper) -> str:
        """The status line's words for a hyperparameter edit."""
        return command.label

    def action_breakpoint(self) -> None:
        from optdbg.engine.breakpoints import NAMES

        def chosen(result: tuple[str, bool] | None) -> None:
            if result is None:
                return
            self.break_condition, self.break_on_warning = result
            what = self.break_condition or "no condition"
            extra = " or any warning" if self.break_on_warning else ""
            self.notify(f"continue (c) stops at: {what}{extra}")

        dialog = BreakpointDialog(self.break_condition, self.break_on_warning, NAMES)
        self.push_screen(dialog, chosen)

    async def action_quit(self) -> None:
        """Quit at once, even while an op runs: a hanging forward is cancelled first."""
        if self._engine is not None and self._job_running:
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
        if action in SESSION_ACTIONS and self.debugger is None:
            return False
        if action in ("op", "export", "slow_backward") and self.debugger is None:
            return self._job_running  # while loading, op keys are queued; after a failure, hidden
        if parameters == ("evaluate",) and self.view is not None:
            return self.view.evaluates  # `v` only where the scenario evaluates
        return True

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for op in OPS:
            yield SystemCommand(
                op.replace("_", " ").capitalize(),
                f"Perform {op} on the session",
                lambda op=op: self.action_op(op),
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
