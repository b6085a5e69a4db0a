"""Several variants of a scenario in lockstep: one Session each, every op to all of them.

Each variant is exactly its solo run: the sessions share nothing but the process's global
random number generators (torch, CUDA, `random`, NumPy), so each variant keeps its own
copy of their state, swapped in around everything it runs.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import fmt
from .breakpoints import Condition, ConditionError, Context
from .builtins import resolve
from .events import Event
from .history import RngState
from .overrides import OverrideError, describe
from .session import Session
from .snapshot import Snapshot

SMALL_PARAMS = 4
"""The table shows the parameters after each row when they have at most this many
elements in all."""


@dataclass(frozen=True)
class Variant:
    """One run of the comparison: a scenario and its `--set` values."""

    spec: str
    overrides: dict[str, Any] = field(default_factory=dict)
    label: str = ""


def make_variants(
    specs: Sequence[str], settings: Sequence[tuple[str, Sequence[Any]]], zipped: bool = False
) -> list[Variant]:
    """Each scenario × each combination of the settings' values (their product, or with
    `zipped` the first values together, then the second, ...)."""
    if zipped and settings:
        counts = {len(values) for _, values in settings}
        if len(counts) > 1:
            shown = ", ".join(f"{name}: {len(values)}" for name, values in settings)
            raise OverrideError(f"--zip pairs the --set values, so each needs as many ({shown})")
        combos: list[tuple[Any, ...]] = list(zip(*(v for _, v in settings), strict=True))
    else:
        combos = list(itertools.product(*(v for _, v in settings)))
    names = [name for name, _ in settings]
    variants = []
    for spec in specs:
        for combo in combos:
            overrides = dict(zip(names, combo, strict=True))
            parts = [Path(spec).stem] if len(specs) > 1 else []
            if overrides:
                parts.append(describe(overrides))
            variants.append(Variant(spec, overrides, " ".join(parts) or Path(spec).stem))
    return variants


@dataclass(frozen=True)
class Pulse:
    """A variant's counters and loss curve, cheap to copy out several times a second."""

    label: str
    op_count: int
    step_count: int
    iteration: int
    epoch: int
    loss: float | None
    losses: tuple[float, ...]
    lr: float | None
    warnings: int
    errors: int
    last: str
    """The latest warning's code ("" when none fired)."""

    @classmethod
    def of(cls, label: str, session: Session) -> Pulse:
        events = session.events
        lr = session.optimizer.param_groups[0].get("lr") if session.optimizer.param_groups else None
        return cls(
            label=label,
            op_count=len(events),
            step_count=session.step_count,
            iteration=session.forward_count,
            epoch=session.epoch,
            loss=session.loss_value,
            losses=tuple(session.loss_history),
            lr=float(lr) if lr is not None else None,
            warnings=sum(len(e.warnings) for e in events),
            errors=sum(1 for e in events if e.error is not None),
            last=next((e.warnings[-1].code for e in reversed(events) if e.warnings), ""),
        )


@dataclass(frozen=True)
class CompareRun:
    """Why a lockstep run stopped, and each variant's events in it."""

    reason: str
    """"condition", "max_iterations", "stopped" or "error"."""
    message: str
    events: tuple[tuple[Event, ...], ...]
    rounds: int


class Comparison:
    """The variants' sessions, driven together."""

    def __init__(
        self,
        variants: Sequence[Variant],
        sessions: Sequence[Session],
        states: Sequence[RngState] | None = None,
    ) -> None:
        self.variants = list(variants)
        self.sessions = list(sessions)
        self._rng = list(states) if states is not None else [RngState.capture([]) for _ in sessions]
        """Each variant's global RNG state while it is not running (captured after its
        load, so each starts where its solo run would)."""

    @classmethod
    def open(cls, variants: Sequence[Variant], history_mb: float | None = None) -> Comparison:
        """Load every variant (ScenarioError / OverrideError name the one that failed)."""
        sessions, states = [], []
        for variant in variants:
            sessions.append(Session.open(resolve(variant.spec), history_mb, variant.overrides))
            states.append(RngState.capture([]))
        return cls(variants, sessions, states)

    @property
    def labels(self) -> list[str]:
        return [v.label for v in self.variants]

    @contextmanager
    def running(self, index: int) -> Iterator[Session]:
        """Variant `index`'s session with its own global RNG state in place."""
        self._rng[index].restore([])
        try:
            yield self.sessions[index]
        finally:
            self._rng[index] = RngState.capture([])

    def each(self, fn: Callable[[Session], Any]) -> list[Any]:
        """`fn(session)` for every variant in turn, each with its own RNG state."""
        results = []
        for i in range(len(self.sessions)):
            with self.running(i) as session:
                results.append(fn(session))
        return results

    def perform(self, word: str) -> list[list[Event]]:
        """One op (a CLI word) on every variant: the events of each."""
        return self.each(lambda s: s.perform(word))

    def undo(self, n: int = 1) -> list[Event]:
        return self.each(lambda s: s.undo(n))

    def redo(self, n: int = 1) -> list[Event]:
        return self.each(lambda s: s.redo(n))

    def set_hyper(self, index: int, group: int, key: str, value: Any) -> Event:
        """A hyperparameter of one variant (the others keep theirs)."""
        with self.running(index) as session:
            return session.set_hyper(group, key, value)

    def pulses(self) -> tuple[Pulse, ...]:
        return tuple(
            Pulse.of(v.label, s) for v, s in zip(self.variants, self.sessions, strict=True)
        )

    def run_until(
        self,
        conditions: Sequence[Condition | None] = (),
        max_rounds: int | None = None,
        stop: threading.Event | None = None,
        on_progress: Callable[[], None] | None = None,
        progress_interval: float = 0.0,
    ) -> CompareRun:
        """Each variant's next op, all variants one op per round, until a condition (one
        per variant, each with its own state) holds for any variant after a round,
        `max_rounds` rounds are done, `stop` is set, or an op fails."""
        conds = list(conditions) or [None] * len(self.sessions)
        for cond, session in zip(conds, self.sessions, strict=True):
            if cond is not None:
                cond.reset(session)
        events: list[list[Event]] = [[] for _ in self.sessions]
        rounds, last_call = 0, -math.inf

        def result(reason: str, message: str) -> CompareRun:
            return CompareRun(reason, message, tuple(map(tuple, events)), rounds)

        while True:
            if max_rounds is not None and rounds >= max_rounds:
                return result("max_iterations", f"{max_rounds} ops done in every variant")
            if stop is not None and stop.is_set():
                return result("stopped", f"paused after {rounds} ops")
            hits, failed = [], []
            for i in range(len(self.sessions)):
                with self.running(i) as session:
                    event = session.next()
                events[i].append(event)
                if not event.ok:
                    failed.append(
                        f"{self.variants[i].label}: op {event.index} ({event.op}) "
                        f"failed: {event.summary}"
                    )
                cond = conds[i]
                if cond is None:
                    continue
                try:
                    met = cond.holds(Context(self.sessions[i], event, rounds))
                except ConditionError as e:
                    return result("error", f"the condition failed in {self.variants[i].label}: {e}")
                if met:
                    hits.append(
                        f"{self.variants[i].label} at op {event.index} ({event.op}): "
                        f"{cond.description}"
                    )
            rounds += 1
            now = time.perf_counter()
            if on_progress is not None and now - last_call >= progress_interval:
                last_call = now
                on_progress()
            if hits:
                return result("condition", "condition met in " + "; ".join(hits))
            if failed:
                return result("error", "; ".join(failed))

    def check_epochs(self) -> None:
        """ValueError naming the first variant whose `data` has no length (an epoch of it
        cannot be told complete)."""
        for variant, session in zip(self.variants, self.sessions, strict=True):
            if not _length(session.scenario.data):
                raise ValueError(_no_epochs(variant.label))

    def run_epoch(self, index: int, after: Callable[[Event], None] | None = None) -> list[Event]:
        """Whole iterations of one variant until an epoch of `data` is complete: the one
        under way, or the next when none is (stops early at a failed op).
        `after(event)` runs right after each op."""
        with self.running(index) as session:
            length = _length(session.scenario.data)
            if not length:
                raise ValueError(_no_epochs(self.variants[index].label))
            done = session.epoch == 0 or session.batch >= length
            target = session.epoch + 1 if done else session.epoch
            events: list[Event] = []
            while True:
                new = session.perform("iteration", after)
                events += new
                finished = session.epoch >= target and session.batch >= length
                if finished or not all(e.ok for e in new):
                    return events


def _no_epochs(label: str) -> str:
    return f"{label}: --epochs needs `data` with a length (a list or a DataLoader)"


def _length(data: Any) -> int | None:
    try:
        return len(data) if data is not None else None
    except TypeError:
        return None


# ----------------------------------------------------------------- the table


@dataclass(frozen=True)
class Row:
    """One variant after one repetition of the ops (or one epoch)."""

    loss: float | None
    params: str
    evaluation: str = ""


def row_of(snap: Snapshot, evaluation: str = "") -> Row:
    """The loss and, when the model is small, its parameters."""
    total = sum(p.value.numel for p in snap.params)
    params = ""
    if total <= SMALL_PARAMS:
        params = " ".join(fmt.tensor(p.value, digits=5) for p in snap.params)
    return Row(snap.loss, params, evaluation)


def params_text(snap: Snapshot) -> list[str]:
    """`name = value` for each parameter (summarized when large)."""
    return [f"{p.name} = {fmt.tensor(p.value, digits=8, limit=8)}" for p in snap.params]


def table(
    labels: Sequence[str],
    rows: Sequence[Sequence[Row]],
    finals: Sequence[Snapshot],
    unit: str = "iter",
    evaluations: Sequence[str] = (),
) -> str:
    """The lecture-style comparison: per row (iteration or epoch) each variant's loss and
    small parameters side by side, then each variant's final loss, evaluation, parameters."""
    headers = [unit, *labels]
    cells = [[str(n + 1)] + [_cell(row) for row in per_row] for n, per_row in enumerate(rows)]
    widths = [
        max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(
            c.rjust(w) if i == 0 else c.ljust(w)
            for i, (c, w) in enumerate(zip(cell, widths, strict=True))
        ).rstrip()
        for cell in cells
    ]
    lines.append("")
    for i, (label, snap) in enumerate(zip(labels, finals, strict=True)):
        ev = evaluations[i] if i < len(evaluations) and evaluations[i] else ""
        lines.append(
            f"{label}: final loss {fmt.num(snap.loss, 10)} after {snap.step_count} steps"
            + (f", evaluation {ev}" if ev else "")
        )
        lines += [f"    {text}" for text in params_text(snap)]
    return "\n".join(lines)


def _cell(row: Row) -> str:
    text = fmt.num(row.loss, 8)
    if row.evaluation:
        text += f"  eval {row.evaluation}"
    if row.params:
        text += f"  {row.params}"
    return text
