"""What a UI may ask of the debugger: one frozen dataclass per command, each naming the
outcome it yields (see `outcomes`). Plain data: no torch, no live object."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal


@dataclass(frozen=True)
class Select:
    """Show parameter `name` in the detail panes (None: the first); changes nothing.
    Outcome: `Viewed`."""

    name: str | None = None

    @property
    def label(self) -> str:
        return "select"


@dataclass(frozen=True)
class Perform:
    """One op, by its CLI word (`f`, `backward`, `i`, ...; `engine.events.WORDS`).
    Outcome: `Performed` (its events: `i` and `n` may add a due evaluation), or `Refused`
    for an unknown word. An op that PyTorch refuses is an event with its error."""

    op: str

    @property
    def label(self) -> str:
        return self.op


@dataclass(frozen=True)
class Batch:
    """Several ops in a row (keys typed faster than ops run), with one view at the end.
    Outcome: `Performed` with every op's events, or `Refused` if a word is unknown."""

    ops: tuple[str, ...]

    @property
    def label(self) -> str:
        extra = f" (+{len(self.ops) - 1} queued ops)" if len(self.ops) > 1 else ""
        return f"{self.ops[0] if self.ops else 'ops'}{extra}"


@dataclass(frozen=True)
class Undo:
    """Go back `n` ops, bit-exact. Outcome: `Performed` (one event, op "undo")."""

    n: int = 1

    @property
    def label(self) -> str:
        return "undo"


@dataclass(frozen=True)
class Redo:
    """Perform again the `n` ops undone last. Outcome: `Performed` (one event)."""

    n: int = 1

    @property
    def label(self) -> str:
        return "redo"


@dataclass(frozen=True)
class Goto:
    """Jump to the state right after op `index` of the history (-1: the start).
    Outcome: `Performed` (one event), or `Refused` in a comparison (lockstep)."""

    index: int

    @property
    def label(self) -> str:
        return f"go to op {self.index}"


@dataclass(frozen=True)
class SetHyper:
    """`optimizer.param_groups[group][key] = value`, validated, logged as op "set" and
    undoable. Outcome: `Performed` (one event), or `Refused` saying why the value is not
    accepted."""

    group: int
    key: str
    value: Any
    """A Python value (a number, a pair, a bool) or the text of one."""

    @property
    def label(self) -> str:
        return f"set {self.key}"


@dataclass(frozen=True)
class ContinueUntil:
    """Run whole iterations until `condition` holds right after an op, a warning fires
    (`stop_on_warning`), `max_iterations` are done, an op fails, or the `stop` event given
    to `execute` is set. Graph capture is off while it runs (it costs more than the op on
    big models); the last loss's graph is extracted once when it stops.
    Outcome: `Continued`, or `Refused` for a condition that does not parse."""

    condition: str = ""
    """A breakpoint expression (`engine.breakpoints`), e.g. "loss < 8.01"; "" for none."""
    stop_on_warning: bool = True
    max_iterations: int | None = None
    progress_every: float = 0.5
    """Seconds between two `Progress` reports to `execute`'s `on_progress` (0: each op)."""

    @property
    def label(self) -> str:
        return "continue"


@dataclass(frozen=True)
class SlowBackward:
    """Backward, recording each autograd node it runs through (grads end bit for bit as
    after a plain backward). Outcome: `SlowMotion` (steps empty if PyTorch refused)."""

    @property
    def label(self) -> str:
        return "backward (slow motion)"


@dataclass(frozen=True)
class ExportGraph:
    """Write the current graph to `path` (default `<scenario>-op<N>.png`, a free name).
    Outcome: `Exported` (what was written, or why nothing, or only the DOT, was)."""

    path: str | Path | None = None
    force: bool = False
    """Replace a file that exists (otherwise that is a failure, and nothing is written)."""
    style: Literal["optdbg", "torchviz"] = "optdbg"
    """optdbg's drawing of the extracted graph, or torchviz's `make_dot` of the live loss."""
    after: str = ""
    """Words put after the scenario's title in the picture (e.g. the ops performed)."""

    @property
    def label(self) -> str:
        return "export"


@dataclass(frozen=True)
class Diagnose:
    """Every pitfall found so far, grouped by code. Outcome: `Diagnosed`."""

    @property
    def label(self) -> str:
        return "diagnostics"


@dataclass(frozen=True)
class DrawLandscape:
    """The loss landscape on a `width` x `height` grid: a contour with the trajectories
    (two parameter elements), else each run's loss along its last step.
    Outcome: `Landscape`, or `Noted` saying why there is none yet."""

    width: int
    height: int

    @property
    def label(self) -> str:
        return "loss landscape"


@dataclass(frozen=True)
class DrawSlice:
    """A 2-D slice of the landscape through the current point, along two random
    directions. Outcome: `Landscape`, or `Noted` saying why there is none yet."""

    @property
    def label(self) -> str:
        return "2-D slice of the landscape"


@dataclass(frozen=True)
class ExportLandscape:
    """Write the landscape to `path` (default `<scenario>-landscape-op<N>.png`, a free
    name). Outcome: `Noted` (severity error when nothing was written)."""

    path: str | Path | None = None
    force: bool = False
    """Replace a file that exists."""

    @property
    def label(self) -> str:
        return "export the landscape"


@dataclass(frozen=True)
class Choose:
    """A comparison's variant `index` becomes the one shown, edited and slowed down
    (`CompareDebugger` only). Outcome: `Viewed`, or `Refused` for no such variant."""

    index: int

    @property
    def label(self) -> str:
        return "select"


@dataclass(frozen=True)
class ExportLosses:
    """Every variant's loss curve to `path` (default `<scenario>-losses-op<N>.png`, a free
    name; `CompareDebugger` only). Outcome: `Noted` (severity error when nothing was
    written)."""

    path: str | Path | None = None
    force: bool = False
    """Replace a file that exists."""

    @property
    def label(self) -> str:
        return "export the loss curves"


@dataclass(frozen=True)
class RunEpoch:
    """One epoch of each variant's `data` in turn (the one under way, or the next), then
    its evaluation when the scenario has one (`CompareDebugger` only). Outcome: `Performed`
    (every variant's events in `variants`), or `Refused` when `data` has no length."""

    @property
    def label(self) -> str:
        return "epoch"


@dataclass(frozen=True)
class Tabulate:
    """Every variant's snapshot now, for a comparison's table (`CompareDebugger` only).
    Outcome: `Tabulated`."""

    @property
    def label(self) -> str:
        return "table"


Command = (
    Select
    | Perform
    | Batch
    | Undo
    | Redo
    | Goto
    | SetHyper
    | ContinueUntil
    | SlowBackward
    | ExportGraph
    | Diagnose
    | DrawLandscape
    | DrawSlice
    | ExportLandscape
    | Choose
    | ExportLosses
    | RunEpoch
    | Tabulate
)
