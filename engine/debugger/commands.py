"""What a UI may ask of the debugger: one frozen dataclass per command, each naming the
outcome it yields (see `outcomes`). Plain data: no torch, no live object."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


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
    Outcome: `Noted` (where it went, or why nothing was written)."""

    path: str | Path | None = None

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
    """Write the landscape to `<scenario>-landscape-op<N>.png`. Outcome: `Noted`."""

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
    """Every variant's loss curve to `<scenario>-losses-op<N>.png` (`CompareDebugger`
    only). Outcome: `Noted`."""

    @property
    def label(self) -> str:
        return "export the loss curves"


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
)
