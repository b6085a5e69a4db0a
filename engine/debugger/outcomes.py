"""What comes back from the debugger: one frozen dataclass per outcome, each with the
detached `View` after the command, and the reports of a running `continue`. Plain data, no
torch imported: the types named here are detached copies (`Snapshot`, `TensorView`, ...)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ..breakpoints import RunResult
    from ..compare import Pulse
    from ..events import Event
    from ..graph import BackwardStep, Graph
    from ..history import TimelineEntry
    from ..landscape import Contour, Profile
    from ..pitfalls import Diagnosis
    from ..session import Session, UpdateDetail
    from ..snapshot import Snapshot, TensorView

Severity = Literal["information", "warning", "error"]


@dataclass(frozen=True)
class View:
    """Everything the panels show after a command, detached from the session."""

    snapshot: Snapshot
    detail: UpdateDetail | None = None
    """The last step's numbers for the selected parameter (None before a step)."""
    graph: Graph | None = None
    """The current loss's graph (None before a forward; a headless debugger draws none)."""
    selected: str | None = None
    values: str = ""
    """Full values of the selected parameter when it is too large for the table."""
    timeline: tuple[TimelineEntry, ...] = ()
    """The history's entries around the current point (undone ones included)."""
    future_losses: tuple[float, ...] = ()
    """Losses of undone forwards: what redo would replay."""
    evaluates: bool = False
    """The scenario has an evaluation (`test_data` or `evaluate()`) for the evaluate op."""
    notes: tuple[str, ...] = ()
    """What optdbg did about the scenario's code that its user should know, in order (e.g.
    a signal handler accepted but not installed: `Scenario.notes`)."""
    graph_error: str | None = None
    """Why the current loss has no graph, or its graph no gradient flow (the graph watcher
    failed; the op completed): shown by the graph panel."""


@dataclass(frozen=True)
class CompareView(View):
    """The selected variant's view, plus every variant's counters and loss curve."""

    pulses: tuple[Pulse, ...] = ()
    chosen: int = 0


@dataclass(frozen=True)
class Record:
    """An op's event with the loss and every parameter's value and grad right after the
    command (what a `--json` line holds), detached."""

    event: Event
    loss: float | None
    params: tuple[tuple[str, TensorView, TensorView | None], ...]


@dataclass(frozen=True)
class VariantOps:
    """What one command did in one variant of a comparison: its events and, from a
    recording debugger, their records."""

    label: str
    events: tuple[Event, ...]
    records: tuple[Record, ...] = ()


@dataclass(frozen=True)
class Viewed:
    """Outcome of `Select` and `Choose`: the view, nothing performed."""

    view: View | None


@dataclass(frozen=True)
class Performed:
    """Outcome of ops, undo, redo, goto and a hyperparameter edit: their events in
    order (errors and warnings on them) and, from a recording debugger, their records."""

    events: tuple[Event, ...]
    view: View | None
    records: tuple[Record, ...] = ()
    variants: tuple[VariantOps, ...] = ()
    """From a comparison's ops: every variant's events (and records), in variant order;
    `events` are the chosen variant's."""


@dataclass(frozen=True)
class Continued:
    """Outcome of `ContinueUntil`: why it stopped, and the ops it performed."""

    result: RunResult
    view: View | None
    records: tuple[Record, ...] = ()


@dataclass(frozen=True)
class SlowMotion:
    """Outcome of `SlowBackward`: the op's event and the recorded steps, in autograd's
    execution order. No event when the steps are those of the backward the current loss
    had already (replayed, nothing performed)."""

    event: Event | None
    steps: tuple[BackwardStep, ...]
    view: View | None


@dataclass(frozen=True)
class Diagnosed:
    """Outcome of `Diagnose`: every finding so far, grouped by code, after `ops` ops."""

    diagnoses: tuple[Diagnosis, ...]
    ops: int
    view: View | None


@dataclass(frozen=True)
class Landscape:
    """Outcome of `DrawLandscape` and `DrawSlice`: what to draw."""

    contour: Contour | None
    """Two parameter elements, or the 2-D slice of a larger model."""
    profiles: tuple[Profile, ...]
    title: str
    view: View | None


@dataclass(frozen=True)
class Noted:
    """Outcome of an export: a line for the log and a toast."""

    text: str
    severity: Severity
    view: View | None


@dataclass(frozen=True)
class Tabulated:
    """Outcome of `Tabulate`: every variant's label and snapshot now."""

    labels: tuple[str, ...]
    snapshots: tuple[Snapshot, ...]
    view: View | None = None


ExportProblem = Literal["no-loss", "no-graph", "failed", "not-rendered"]
"""Why an export wrote nothing, or only the DOT: no forward yet, a loss without a graph to
draw (or whose extraction failed), the file could not be written, no renderer worked."""


@dataclass(frozen=True)
class Exported(Noted):
    """Outcome of `ExportGraph`: a line for the log and a toast, and what was written."""

    written: Path | None = None
    """The file written in the format asked for (None: see `problem`)."""
    message: str = ""
    """The export's own line (the file, its nodes, the renderer and time; or the problem)."""
    problem: ExportProblem | None = None


@dataclass(frozen=True)
class Refused:
    """A command that was not carried out (an unknown op word, a value or condition that
    does not parse): why, in words. Nothing changed."""

    text: str
    view: View | None


@dataclass(frozen=True)
class Failed:
    """A command that raised unexpectedly (an engine bug, or a cancel that landed outside
    an op): its type and message. The session may be mid-op; reloading is safe."""

    text: str
    view: View | None = None


Outcome = (
    Viewed
    | Performed
    | Continued
    | SlowMotion
    | Diagnosed
    | Landscape
    | Noted
    | Exported
    | Tabulated
    | Refused
    | Failed
)


@dataclass(frozen=True)
class Counters:
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
    def of(cls, session: Session) -> Counters:
        return cls(
            op_count=len(session.events),
            step_count=session.step_count,
            iteration=session.forward_count,
            epoch=session.epoch,
            batch=session.batch,
            loss=session.loss_value,
            losses=tuple(session.loss_history),
            next_op=session.next_op,
            lrs=tuple(g["lr"] for g in session.param_groups if "lr" in g),
        )

    def applied_to(self, snap: Snapshot) -> Snapshot:
        """The last full snapshot with these counters (for a status line)."""
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
class Progress:
    """A report while `ContinueUntil` runs: the latest op and, from a panel debugger, the
    counters (a headless one reports after every op, with its record when it records, and
    no counters, whose copy of the loss history would make a long run quadratic)."""

    event: Event
    counters: Counters | None
    record: Record | None = None


@dataclass(frozen=True)
class LockstepProgress:
    """A report while a comparison's `ContinueUntil` runs: every variant's counters."""

    pulses: tuple[Pulse, ...]


OnProgress = Callable[[Progress | LockstepProgress], None]
