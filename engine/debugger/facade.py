"""The façade: `Debugger` carries out one session's commands, `CompareDebugger` several
variants' in lockstep (see the package's docstring)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..breakpoints import AnyOf, Condition, ConditionError, RunResult, WarningFires
from ..breakpoints import parse_condition as _parse_condition
from ..events import WORDS, Event
from ..graph import BackwardStep
from ..hyper import HyperError
from ..session import Session
from ..snapshot import Snapshot, shared_views
from .commands import (
    Batch,
    Choose,
    Command,
    ContinueUntil,
    Diagnose,
    DrawLandscape,
    DrawSlice,
    ExportGraph,
    ExportLandscape,
    ExportLosses,
    Goto,
    Perform,
    Redo,
    RunEpoch,
    Select,
    SetHyper,
    SlowBackward,
    Tabulate,
    Undo,
)
from .outcomes import (
    CompareView,
    Continued,
    Counters,
    Diagnosed,
    Exported,
    ExportProblem,
    Failed,
    Landscape,
    LockstepProgress,
    Noted,
    OnProgress,
    Outcome,
    Performed,
    Progress,
    Record,
    Refused,
    Severity,
    SlowMotion,
    Tabulated,
    VariantOps,
    View,
    Viewed,
)

if TYPE_CHECKING:
    from ..compare import Comparison, Variant

HISTORY_WINDOW = 400
"""A view's timeline holds this many ops before the current point (a quarter after)."""


class Debugger:
    """One session behind typed commands. With `panels` (a UI), it records the graph's
    saved tensors and gradient flow and returns a full view after every command; without
    (headless), a step copies nothing for the update panel, only `Select` returns a view
    (the snapshot alone), and with `records` every op comes with its `Record`."""

    def __init__(
        self,
        session: Session,
        *,
        panels: bool = True,
        records: bool = False,
        graph: bool | None = None,
        summaries: bool = True,
    ) -> None:
        """Args:
        session: the loaded session to drive (this debugger is its only driver from now).
        panels: whether a UI shows the panels (see the class docstring).
        records: headless only: each op's parameters and grads copied out (`--json`).
        graph: record the graph's node data and gradient flow (default: with panels; a
            headless export wants them).
        summaries: whether the events' one-line summaries show values (off: nobody prints
            them, as `--quiet` and `--json`; see `Session.summary_values`).
        """
        self._session = session
        self.panels = panels
        self.records = records and not panels
        self.selected: str | None = None
        """The parameter the detail panes show (set by `Select`)."""
        self._recorded: list[Record] = []
        """The records of the command running now, each taken right after its op."""
        session.capture_graph = panels if graph is None else graph
        session.step_detail = panels
        session.summary_values = summaries

    @property
    def session(self) -> Session:
        """The live session commands go to (for tests; a UI reads views, not this)."""
        return self._session

    @property
    def path(self) -> Path:
        """The scenario's file (what a reload opens again)."""
        return self._session.scenario.path

    @property
    def overrides(self) -> dict[str, Any]:
        """The scenario's `--set` values (applied again on reload)."""
        return dict(self._session.scenario.overrides)

    @classmethod
    def open(
        cls,
        spec: str | Path,
        overrides: dict[str, Any] | None = None,
        *,
        panels: bool = True,
        records: bool = False,
        graph: bool | None = None,
        summaries: bool = True,
    ) -> Debugger:
        """Load a scenario into a new session behind a debugger.

        Args:
            spec: a scenario path or a built-in's name.
            overrides: the `--set` values.
            panels, records, graph, summaries: see `__init__`.

        Returns:
            The debugger, its session before any op.

        Raises:
            ScenarioError, OverrideError: the scenario cannot be loaded (the message says
            where and why). Loading is not a command: there is no session to refuse it.
        """
        session = Session.open(spec, overrides=overrides)
        return cls(session, panels=panels, records=records, graph=graph, summaries=summaries)

    def execute(
        self,
        command: Command,
        *,
        stop: threading.Event | None = None,
        on_progress: OnProgress | None = None,
    ) -> Outcome:
        """Carry out one command.

        Args:
            command: what to do (one of the command dataclasses of this module).
            stop: set it (from any thread) to pause a running `ContinueUntil`.
            on_progress: called on this thread while `ContinueUntil` runs.

        Returns:
            The command's outcome (each command's docstring names it), with the view after
            it. A refusal is `Refused`; an unexpected exception is `Failed`.

        Raises:
            Nothing but what is not an `Exception` (KeyboardInterrupt, SystemExit).
        """
        handler = getattr(self, f"_do_{type(command).__name__.lower()}", None)
        try:
            if handler is None:
                return Refused(f"{command.label}: not available here", self.view())
            outcome: Outcome = handler(command, stop, on_progress)
            return outcome
        except Exception as e:  # an engine bug or a cancel outside an op: never fatal
            return Failed(f"{command.label} failed: {type(e).__name__}: {e}")

    # the commands --------------------------------------------------------

    def _do_select(self, c: Select, *_: Any) -> Outcome:
        """Args: c: the parameter to show. Returns: Viewed."""
        self.selected = c.name
        return Viewed(self.view() or View(self._session.snapshot()))

    def _do_perform(self, c: Perform, *_: Any) -> Outcome:
        """Args: c: the op word. Returns: Performed, or Refused for an unknown word."""
        return self._do_batch(Batch((c.op,)))

    def _do_batch(self, c: Batch, *_: Any) -> Outcome:
        """Args: c: the op words, performed in order. Returns: Performed, or Refused for
        an unknown word (then no op is performed)."""
        unknown = [w for w in c.ops if w not in WORDS]
        if unknown:
            return Refused(self._unknown(unknown), self.view())
        return self._performed([e for word in c.ops for e in self._perform(word)])

    def _do_undo(self, c: Undo, *_: Any) -> Outcome:
        """Args: c: how many ops. Returns: Performed, or Refused for n < 1."""
        if c.n < 1:
            return Refused(f"undo needs n >= 1, not {c.n}", self.view())
        return self._performed(self._undo(c.n))

    def _do_redo(self, c: Redo, *_: Any) -> Outcome:
        """Args: c: how many ops. Returns: Performed, or Refused for n < 1."""
        if c.n < 1:
            return Refused(f"redo needs n >= 1, not {c.n}", self.view())
        return self._performed(self._redo(c.n))

    def _do_goto(self, c: Goto, *_: Any) -> Outcome:
        """Args: c: the op index. Returns: Performed (an index outside the history is
        the event's error)."""
        try:
            event = self._session.goto(c.index)
        except ValueError as e:
            return Refused(str(e), self.view())
        return self._performed([event])

    def _do_sethyper(self, c: SetHyper, *_: Any) -> Outcome:
        """Args: c: the group, key and value. Returns: Performed, or Refused with
        HyperError's reason (nothing assigned)."""
        try:
            event = self._set_hyper(c.group, c.key, c.value)
        except HyperError as e:
            return Refused(str(e), self.view())
        return self._performed([event])

    def _do_continueuntil(
        self, c: ContinueUntil, stop: threading.Event | None, on_progress: OnProgress | None
    ) -> Outcome:
        """Args: c: when to stop; stop: the pause flag; on_progress: the live reports.
        Returns: Continued, or Refused for a condition that does not parse."""
        try:
            condition = self._condition(c)
        except ConditionError as e:
            return Refused(f"invalid condition: {e}", self.view())
        return self._continue(c, condition, stop, on_progress)

    def _do_slowbackward(self, c: SlowBackward, *_: Any) -> Outcome:
        """Args: c: the command. Returns: SlowMotion; when the current loss's backward has
        run already (b, then B) its recorded steps, with no op performed (a second backward
        is refused once PyTorch has freed the graph)."""
        graph = self._session.graph()
        if graph is not None and graph.steps:
            return SlowMotion(None, graph.steps, self.view())
        event, steps = self._slow_backward()
        return SlowMotion(event, steps, self.view())

    def _do_exportgraph(self, c: ExportGraph, *_: Any) -> Outcome:
        """Args: c: where and how to write. Returns: Exported (severity warning or error
        when nothing, or only the DOT, was written)."""
        from ..export import ExportError, default_path, export_graph, export_torchviz

        s = self._session
        graph = s.graph()
        if s.loss is None:
            text = "nothing to export yet: press f to build the graph first"
            return self._exported(text, "warning", "no-loss")
        if graph is None or graph.root is None:
            why = s.graph_error or _why_no_graph(s)
            return self._exported(f"no graph to export: {why}", "warning", "no-graph")
        path = Path(c.path) if c.path is not None else default_path(s.scenario.name, len(s.events))
        title = f"{s.scenario.title} ({c.after})" if c.after else s.scenario.title
        try:
            if c.style == "torchviz":
                params = dict(s.scenario.params)
                result = export_torchviz(s.loss, params, path, force=c.force)
            else:
                result = export_graph(graph, path, title=title, force=c.force)
        except ExportError as e:
            return self._exported(f"export failed: {e}", "error", "failed")
        except OSError as e:
            return self._exported(
                f"export failed: cannot write {path}: {e.strerror or e}", "error", "failed"
            )
        if not result.ok:
            return self._exported(result.message, "warning", "not-rendered")
        text = f"graph exported: {path.resolve()}"
        return Exported(text, "information", self.view(), path, result.message)

    def _do_diagnose(self, c: Diagnose, *_: Any) -> Outcome:
        """Args: c: the command. Returns: Diagnosed (before the first op: what the
        detectors found at load)."""
        s = self._session
        return Diagnosed(tuple(s.findings()), len(s.events), self.view())

    def _do_drawlandscape(self, c: DrawLandscape, *_: Any) -> Outcome:
        """Args: c: the grid's size. Returns: Landscape, or Noted saying why not yet."""
        from ..landscape import LandscapeError, contour, kind, profile

        sessions, labels = self.runs()
        title = self._session.scenario.title
        try:
            if kind(sessions[0]) == "contour":
                pairs = [
                    (s, lb) for s, lb in zip(sessions, labels, strict=True) if kind(s) == "contour"
                ]
                data = contour([s for s, _ in pairs], [lb for _, lb in pairs], c.width, c.height)
                return Landscape(data, (), title, self.view())
            profiles = tuple(profile(s, lb) for s, lb in zip(sessions, labels, strict=True))
            return Landscape(None, profiles, title, self.view())
        except LandscapeError as e:
            return self._noted(f"no landscape yet: {e}", "warning")

    def _do_drawslice(self, c: DrawSlice, *_: Any) -> Outcome:
        """Args: c: the command. Returns: Landscape, or Noted saying why not yet."""
        from ..landscape import LandscapeError, slice2d

        scenario = self._session.scenario
        try:
            data = slice2d(self._session, scenario.name)
        except LandscapeError as e:
            return self._noted(f"no slice yet: {e}", "warning")
        return Landscape(data, (), f"{scenario.title} · 2-D slice", self.view())

    def _do_exportlandscape(self, c: ExportLandscape, *_: Any) -> Outcome:
        """Args: c: the command. Returns: Noted."""
        from ..export import unique_path
        from ..plots import PlotError, write_landscape

        sessions, labels = self.runs()
        s = self._session
        default = Path(f"{s.scenario.name}-landscape-op{len(s.events)}.png")
        path = Path(c.path) if c.path is not None else unique_path(default)
        try:
            return self._noted(write_landscape(path, sessions, labels, self.title, c.force))
        except PlotError as e:
            return self._noted(f"landscape export failed: {e}", "error")

    # what a comparison does differently -------------------------------------

    @property
    def title(self) -> str:
        """The title of the pictures (landscapes, loss curves)."""
        return self._session.scenario.title

    def runs(self) -> tuple[list[Session], list[str]]:
        """The sessions a landscape draws, and their labels."""
        return [self._session], [self._session.scenario.name]

    def _perform(self, word: str) -> list[Event]:
        return self._session.perform(word, self._record if self.records else None)

    def _record(self, event: Event) -> None:
        """A record of the op just performed (an iteration's ops each have their own)."""
        s = self._session
        self._recorded.append(Record(event, s.loss_value, tuple(s.param_views())))

    def _undo(self, n: int) -> list[Event]:
        return [self._session.undo(n)]

    def _redo(self, n: int) -> list[Event]:
        return [self._session.redo(n)]

    def _set_hyper(self, group: int, key: str, value: Any) -> Event:
        return self._session.set_hyper(group, key, value)

    def _slow_backward(self) -> tuple[Event, tuple[BackwardStep, ...]]:
        return self._session.backward_steps()

    def _continue(
        self,
        c: ContinueUntil,
        condition: Condition | None,
        stop: threading.Event | None,
        on_progress: OnProgress | None,
    ) -> Outcome:
        session = self._session

        def progress(event: Event) -> None:
            if on_progress is not None:
                if self.panels:
                    on_progress(Progress(event, Counters.of(session)))
                else:
                    on_progress(Progress(event, None, next(iter(self._records([event])), None)))

        capture, session.capture_graph = session.capture_graph, False
        try:
            result = session.run_until(
                condition, c.max_iterations, stop, progress, c.progress_every
            )
        finally:
            session.capture_graph = capture
        return Continued(result, self.view())

    # views ---------------------------------------------------------------

    def view(self) -> View | None:
        """The detached view of what the panels show now (None from a headless debugger)."""
        if not self.panels:
            return None
        names = [t.name for t in self._session.tracks]
        name = self.selected if self.selected in names else (names[0] if names else None)
        with shared_views():  # the panels show one parameter's optimizer state: its own
            return self._full_view(self._session.snapshot(() if name is None else (name,)), name)

    def _full_view(self, snap: Snapshot, name: str | None) -> View:
        s = self._session
        detail = s.update_detail(name) if name else None
        param = snap.param(name) if name else None
        large = param is not None and not param.value.is_small
        values = s.values_text(name) if large and name else ""
        here = snap.op_count
        window = s.timeline(here - HISTORY_WINDOW, here + HISTORY_WINDOW // 4)
        future = tuple(
            e.loss
            for e in s.timeline(here)
            if e.undone and e.op == "forward" and e.loss is not None
        )
        evaluates = s.scenario.evaluation is not None
        notes = tuple(s.scenario.notes)
        graph = s.graph()
        return View(
            snap, detail, graph, name, values, window, future, evaluates, notes, s.graph_error
        )

    # helpers -------------------------------------------------------------

    def _condition(self, c: ContinueUntil) -> Condition | None:
        """The TUI's breakpoint (any warning or the expression), or the expression alone."""
        parsed = _parse_condition(c.condition) if c.condition else None
        if not c.stop_on_warning:
            return parsed
        return AnyOf(WarningFires(), *([parsed] if parsed is not None else []))

    def _records(self, events: Sequence[Event]) -> tuple[Record, ...]:
        if not self.records or not events:
            return ()
        params = tuple(self._session.param_views())
        loss = self._session.loss_value
        return tuple(Record(e, loss, params) for e in events)

    def _performed(self, events: Sequence[Event]) -> Performed:
        recorded, self._recorded = self._recorded, []
        records = tuple(recorded) if recorded else self._records(events)
        return Performed(tuple(events), self.view(), records)

    def _noted(self, text: str, severity: Severity = "information") -> Noted:
        return Noted(text, severity, self.view())

    def _exported(self, text: str, severity: Severity, problem: ExportProblem) -> Exported:
        return Exported(text, severity, self.view(), None, text, problem)

    @staticmethod
    def _unknown(words: Sequence[str]) -> str:
        return f"unknown op word(s): {' '.join(words)}; expected one of: {', '.join(WORDS)}"


def _why_no_graph(session: Session) -> str:
    """Why the latest loss has no autograd graph to draw, true for this loss."""
    loss = session.loss
    if loss is not None and loss.requires_grad:  # a leaf: no operation made it
        name = next((n for n, p in session.scenario.params if p is loss), None)
        what = f"the parameter `{name}`" if name else "a leaf tensor"
        return (
            f"the loss is {what} itself (forward returns it unchanged), so its graph is that "
            "one leaf, with no operation to draw; compute the loss from it to see a graph"
        )
    return (
        "the loss does not require grad, so it has no autograd graph (does forward use a "
        "tensor with requires_grad=True?)"
    )


# ------------------------------------------------------------------ several variants


class CompareDebugger(Debugger):
    """Several variants in lockstep (`engine.compare.Comparison`): ops, undo, redo and
    continue go to every variant, each with its own random state; a hyperparameter edit,
    slow motion and the view are the chosen variant's (`Choose`). A jump in one variant's
    history would break the lockstep: `Goto` is refused."""

    def __init__(
        self,
        comparison: Comparison,
        chosen: int = 0,
        *,
        panels: bool = True,
        records: bool = False,
    ) -> None:
        """Args:
        comparison: the loaded variants.
        chosen: the variant shown first.
        panels, records: as for `Debugger`; headless, every variant's records come in
            `Performed.variants`.
        """
        self.comparison = comparison
        self.chosen = chosen
        self._rounds: list[tuple[list[Event], list[Record]]] = []
        """Each variant's events and records of the command running now."""
        super().__init__(comparison.sessions[chosen], panels=panels, records=records)
        for session in comparison.sessions:
            session.step_detail = panels
        self._watch(chosen)

    @classmethod
    def start(
        cls,
        variants: Sequence[Variant],
        ops: Sequence[str] = (),
        repeat: int = 1,
        epochs: int | None = None,
        *,
        panels: bool = True,
        records: bool = False,
    ) -> CompareDebugger:
        """Load every variant, then run `epochs` epochs and `ops` `repeat` times in each.

        Args:
            variants: what to load (`engine.compare.make_variants`).
            ops: op words performed `repeat` times after loading.
            repeat: how many times.
            epochs: whole epochs of `data` run first, variant by variant.
            panels, records: see `__init__`.

        Returns:
            The debugger, variant 0 chosen.

        Raises:
            ScenarioError, OverrideError: a variant cannot be loaded (named in the message).
            ValueError: `epochs` without `data` of known length.
        """
        from ..compare import Comparison

        comparison = Comparison.open(variants)
        for session in comparison.sessions:
            session.capture_graph = False
        for _ in range(epochs or 0):
            for k in range(len(comparison.sessions)):
                comparison.run_epoch(k)
        for _ in range(repeat if ops else 0):
            for word in ops:
                comparison.perform(word)
        return cls(comparison, panels=panels, records=records)

    @property
    def title(self) -> str:
        """The comparison's name in its pictures: the scenario and the variants."""
        name = self.comparison.sessions[0].scenario.name
        return f"{name}: {', '.join(self.comparison.labels)}"

    def _watch(self, chosen: int) -> None:
        """Graph capture costs as much as the op on big models: the chosen one only (none
        headless)."""
        for k, session in enumerate(self.comparison.sessions):
            session.capture_graph = self.panels and k == chosen

    def _do_runepoch(self, c: RunEpoch, *_: Any) -> Outcome:
        """Args: c: the command. Returns: Performed, or Refused for `data` without a length
        (then nothing ran)."""
        comparison = self.comparison
        try:
            comparison.check_epochs()
        except ValueError as e:
            return Refused(str(e), self.view())
        self._rounds = [([], []) for _ in comparison.sessions]
        for k, session in enumerate(comparison.sessions):

            def note(event: Event, k: int = k) -> None:
                self._note(k, event)

            comparison.run_epoch(k, note)
            if session.scenario.evaluation is not None:
                with comparison.running(k):
                    session.perform("evaluate", note)
        return self._performed(self._rounds[self.chosen][0])

    def _do_tabulate(self, c: Tabulate, *_: Any) -> Outcome:
        """Args: c: the command. Returns: Tabulated."""
        snapshots = tuple(s.snapshot() for s in self.comparison.sessions)
        return Tabulated(tuple(self.comparison.labels), snapshots, self.view())

    def _do_choose(self, c: Choose, *_: Any) -> Outcome:
        """Args: c: the variant. Returns: Viewed, or Refused for no such variant."""
        if not 0 <= c.index < len(self.comparison.sessions):
            return Refused(f"no variant {c.index + 1}", self.view())
        self.chosen = c.index
        self._session = self.comparison.sessions[c.index]
        self.selected = None
        self._watch(c.index)
        return Viewed(self.view())

    def _do_goto(self, c: Goto, *_: Any) -> Outcome:
        """Args: c: the op index. Returns: Refused (lockstep)."""
        return Refused(
            "in a comparison, go back with u (every variant together), not by jumping in "
            "one variant's history",
            self.view(),
        )

    def _do_exportlosses(self, c: ExportLosses, *_: Any) -> Outcome:
        """Args: c: where to write. Returns: Noted."""
        from ..export import unique_path
        from ..plots import PlotError, write_loss_curves

        s = self._session
        curves = [x.loss_history for x in self.comparison.sessions]
        default = f"{s.scenario.name}-losses-op{len(s.events)}.png"
        path = Path(c.path) if c.path is not None else unique_path(default)
        labels = self.comparison.labels
        try:
            text = write_loss_curves(path, labels, curves, self.title, c.force)
        except PlotError as e:
            return self._noted(f"export failed: {e}", "error")
        return self._noted(text)

    def runs(self) -> tuple[list[Session], list[str]]:
        return list(self.comparison.sessions), self.comparison.labels

    def _perform(self, word: str) -> list[Event]:
        comparison = self.comparison
        if not self._rounds:
            self._rounds = [([], []) for _ in comparison.sessions]
        found = []
        for k in range(len(comparison.sessions)):

            def note(event: Event, k: int = k) -> None:
                self._note(k, event)

            with comparison.running(k) as session:
                found.append(session.perform(word, note))
        return found[self.chosen]

    def _note(self, k: int, event: Event) -> None:
        """Variant `k` performed `event` just now: keep it, with its record."""
        mine, records = self._rounds[k]
        mine.append(event)
        if self.records:
            session = self.comparison.sessions[k]
            records.append(Record(event, session.loss_value, tuple(session.param_views())))

    def _performed(self, events: Sequence[Event]) -> Performed:
        rounds, self._rounds = self._rounds, []
        variants = tuple(
            VariantOps(label, tuple(mine), tuple(records))
            for label, (mine, records) in zip(self.comparison.labels, rounds, strict=True)
        )
        return Performed(tuple(events), self.view(), (), variants)

    def _undo(self, n: int) -> list[Event]:
        return [self.comparison.undo(n)[self.chosen]]

    def _redo(self, n: int) -> list[Event]:
        return [self.comparison.redo(n)[self.chosen]]

    def _set_hyper(self, group: int, key: str, value: Any) -> Event:
        return self.comparison.set_hyper(self.chosen, group, key, value)

    def _slow_backward(self) -> tuple[Event, tuple[BackwardStep, ...]]:
        """Backward in every variant; the chosen one recorded node by node."""
        found: tuple[Event, tuple[BackwardStep, ...]] | None = None
        for k in range(len(self.comparison.sessions)):
            with self.comparison.running(k) as session:
                if k == self.chosen:
                    found = session.backward_steps()
                else:
                    session.backward()
        assert found is not None
        return found

    def _continue(
        self,
        c: ContinueUntil,
        condition: Condition | None,
        stop: threading.Event | None,
        on_progress: OnProgress | None,
    ) -> Outcome:
        """Every variant one op per round, each with its own copy of the condition."""
        comparison = self.comparison

        def progress() -> None:
            if on_progress is not None:
                on_progress(LockstepProgress(comparison.pulses()))

        saved = [x.capture_graph for x in comparison.sessions]
        for x in comparison.sessions:
            x.capture_graph = False
        try:
            conds = [self._condition(c) for _ in comparison.sessions]
            run = comparison.run_until(conds, c.max_iterations, stop, progress, c.progress_every)
        finally:
            for x, capture in zip(comparison.sessions, saved, strict=True):
                x.capture_graph = capture
        mine = run.events[self.chosen]
        done = sum(1 for e in mine if e.op == "zero_grad" and e.ok)
        index = mine[-1].index if mine else None
        return Continued(RunResult(run.reason, run.message, mine, done, index), self.view())

    def view(self) -> View | None:
        base = super().view()
        if base is None:
            return None
        values = {f.name: getattr(base, f.name) for f in fields(View)}
        return CompareView(**values, pulses=self.comparison.pulses(), chosen=self.chosen)
