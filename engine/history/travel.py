"""The History: the op log, undo, redo and goto (restore a checkpoint, replay the logged
ops through the driver), and when checkpoints are taken."""

from __future__ import annotations

import contextlib
import io
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ScenarioError, failure, message_of, source_line, type_of
from ..events import LOOP_OPS, Event, Finding, OpError
from ..loop import Checkpointable, Stateful
from .budget import Budget
from .checkpoint import Checkpoint, Copier, structure
from .rng import RngState

DEFAULT_HISTORY_MB = 256.0
OVERHEAD = 0.02
"""Checkpoints are spaced so that taking them costs at most this fraction of the op time."""


def is_megabytes(mb: object) -> bool:
    return not isinstance(mb, bool) and isinstance(mb, int | float) and mb >= 0


def check_history_mb(mb: object) -> None:
    """Raises:
    ValueError: `mb` (the caller's argument, not the scenario's) is not megabytes >= 0."""
    if not is_megabytes(mb):
        raise ValueError(f"history_mb must be a number of megabytes >= 0, not {mb!r}")


class HistoryError(Exception):
    """A jump that cannot be made (the message says why)."""


@dataclass(frozen=True)
class TimelineEntry:
    """One op in the history, for a timeline view."""

    index: int
    op: str
    summary: str
    loss: float | None
    ok: bool
    undone: bool
    """True for ops after the current position: undone, and redoable."""
    checkpoint: bool
    """A checkpoint holds the state before this op (jumping near it is fast)."""


@dataclass
class _Entry:
    event: Event
    args: tuple[Any, ...] | None = None


class History:
    """The op log, the checkpoints and the jumps of one driver; `observers` are checkpointed
    with it."""

    def __init__(
        self,
        loop: Checkpointable,
        history_mb: float | None = None,
        every: int | None = None,
        observers: Sequence[Stateful] = (),
    ) -> None:
        self.loop = loop
        scenario = loop.scenario
        mb = history_mb if history_mb is not None else scenario.config.get("history_mb")
        if mb is None:
            mb = DEFAULT_HISTORY_MB
        if history_mb is not None:
            check_history_mb(history_mb)
        if not is_megabytes(mb):
            raise ScenarioError(
                str(scenario.path),
                scenario.config_line,
                f'optdbg_config["history_mb"] is {mb!r}',
                "the megabytes undo history may keep: a number >= 0 (default 256)",
                'e.g. optdbg_config = {"history_mb": 512}, or remove the key',
                source_line(str(scenario.path), scenario.config_line),
            )
        self._kept = Budget(int(mb * 1024 * 1024))
        self.every = every
        """Take a checkpoint every this many forwards (None: by cost, see OVERHEAD)."""
        self.entries: list[_Entry] = []
        self.replaying = False
        self.divergence: str | None = None
        """How the last replay differed from the log (None: bit for bit the same)."""
        self.unavailable: str | None = None
        self._errors: list[str] = []
        """Checkpoints skipped since the last `take_errors` (an op never fails because of
        history)."""
        self._copier = Copier(loop, observers)
        self.epoch_rng: RngState | None = None
        """The random state that shuffled the current epoch (set as `iter(data)` begins)."""
        self._pending: Checkpoint | None = None
        self._copy_seconds = 0.0
        self._structure = structure(loop.optimizer)
        if isinstance(scenario.data, Iterator):
            self.unavailable = (
                "`data` is a one-shot iterator (e.g. a generator), so its batches cannot be "
                "drawn again; make it re-iterable (a list or a DataLoader) to use undo"
            )
            return
        start = time.perf_counter()
        try:
            self._kept.add(self._capture(0))
        except Exception as e:  # something the scenario holds cannot be copied: run without undo
            self.unavailable = (
                f"the scenario's state cannot be copied ({type_of(e)}: {message_of(e)}), so "
                "undo, redo and goto are off; every other op works as usual"
            )
            self._kept.clear()
            return
        self._copy_seconds = time.perf_counter() - start

    @property
    def budget(self) -> int:
        """Bytes the checkpoints may hold (the start checkpoint is kept even past it)."""
        return self._kept.limit

    @property
    def checkpoints(self) -> list[Checkpoint]:
        """The checkpoints kept, by position."""
        return self._kept.checkpoints

    @property
    def nbytes(self) -> int:
        """Bytes held by the checkpoints now."""
        return self._kept.nbytes

    @property
    def peak_nbytes(self) -> int:
        return self._kept.peak_nbytes

    @property
    def generators(self) -> list[Any]:
        """The random number generators the scenario holds (its globals' and its data's)."""
        return self._copier.generators

    # ------------------------------------------------------------- where we are

    @property
    def position(self) -> int:
        """Ops applied now (0 at the start); the state is the one after op position - 1."""
        return len(self.loop.events)

    def timeline(self, start: int = 0, stop: int | None = None) -> tuple[TimelineEntry, ...]:
        """The ops of the history from index `start` to `stop` (excluded; None: the end),
        the undone (redoable) ones included."""
        marks = {c.position for c in self.checkpoints}
        pos = self.position
        start = max(0, start)
        stop = len(self.entries) if stop is None else min(stop, len(self.entries))
        return tuple(
            TimelineEntry(
                index=i,
                op=e.event.op,
                summary=e.event.summary,
                loss=e.event.loss,
                ok=e.event.ok,
                undone=i >= pos,
                checkpoint=i in marks,
            )
            for i, e in enumerate(self.entries[start:stop], start)
        )

    # ------------------------------------------------------------- recording

    def before_op(self, op: str) -> None:
        """Called by the driver before it performs an op."""
        if self.replaying or self.unavailable is not None:
            return
        self._drop_future(op)
        if op == "forward":
            self._checkpoint()

    def take_errors(self) -> tuple[str, ...]:
        """What failed since the last call, one line each, forgotten here: the driver puts
        it on the op's event (`Event.observer_errors`); during a replay, the jump's event
        carries them."""
        if self.replaying:
            return ()
        errors, self._errors = tuple(dict.fromkeys(self._errors)), []
        return errors

    def _checkpoint(self, force: bool = False) -> None:
        """A checkpoint here if one is due; one that cannot be taken is skipped (history
        never breaks an op), the failure kept for `take_errors`."""
        try:
            self._maybe_checkpoint(force)
        except Exception as e:
            self._errors.append(
                "undo history: a checkpoint could not be taken (undo and redo replay more ops, "
                f"from an earlier one): {failure(e)}"
            )
            self._pending = None

    def after_op(self, event: Event, args: tuple[Any, ...] | None = None) -> None:
        """Called by the driver once the op's event is in its `events`; `args` are what a
        replay needs besides the op's name (a hyperparameter edit's group, key and value)."""
        if self.replaying:
            return
        if self.unavailable is None and structure(self.loop.optimizer) != self._structure:
            self.unavailable = (
                f"op {event.index} ({event.op}) changed the optimizer's param groups (e.g. "
                "add_param_group), so earlier states cannot be restored: undo, redo and goto "
                "are off from here on; every other op works as usual"
            )
            self._kept.clear()
            self.entries, self._pending = [], None
            return
        self.entries.append(_Entry(event, args))
        pending, self._pending = self._pending, None
        if pending is not None and not event.ok and self.loop.loss is not None:
            self._kept.remove(pending)  # replay from it would need the loss it does not hold

    def epoch_starting(self) -> None:
        """Called right before `iter(data)`: the random state that shuffles this epoch."""
        if self.unavailable is None:
            self.epoch_rng = RngState.capture(self.generators)

    def _drop_future(self, op: str) -> None:
        pos = self.position
        if len(self.entries) <= pos:
            return  # no redo branch (and so no checkpoint at or after this position)
        del self.entries[pos:]
        keep_here = op == "forward" or self.loop.loss is None
        for ck in [c for c in self.checkpoints if c.position > pos]:
            self._kept.remove(ck)
        here = self._at(pos)
        if here is not None and here.position > 0 and not keep_here:
            self._kept.remove(here)

    def _at(self, position: int) -> Checkpoint | None:
        return next((c for c in self.checkpoints if c.position == position), None)

    def _maybe_checkpoint(self, force: bool = False) -> None:
        pos = self.position
        last = max((c for c in self.checkpoints if c.position <= pos), key=lambda c: c.position)
        if last.position == pos:
            self._pending = last if last.position > 0 else None
            return
        since = self.entries[last.position : pos]
        if force:
            pass
        elif self.every is not None:
            if sum(1 for e in since if e.event.op == "forward") < self.every:
                return
        elif sum(e.event.seconds for e in since) * OVERHEAD < self._copy_seconds:
            return
        kept = self._kept
        need = max(kept.estimate, self._copier.state_bytes())
        if kept.start_bytes() + need > kept.limit:
            return  # a checkpoint would not fit next to the start one: not even copied
        started = time.perf_counter()
        ck = self._capture(pos)
        if kept.make_room(ck, len(self.entries)):
            kept.add(ck)
            self._pending = ck
        self._copy_seconds = time.perf_counter() - started

    def _capture(self, position: int) -> Checkpoint:
        prev = self.checkpoints[-1] if self.checkpoints else None
        return self._copier.capture(position, prev, self.epoch_rng)

    def _restore(self, ck: Checkpoint) -> None:
        self._copier.restore(ck)
        self.epoch_rng = ck.epoch_rng
        self.loop.events[:] = [e.event for e in self.entries[: ck.position]]

    # ------------------------------------------------------------- jumps

    def undo(self, n: int = 1) -> Event:
        pos = self.position
        if n < 1:
            raise ValueError(f"undo needs n >= 1, not {n}")
        if pos == 0:
            return self._refused("undo", "nothing to undo: this is the scenario's start")
        return self._jump("undo", max(0, pos - n))

    def redo(self, n: int = 1) -> Event:
        pos = self.position
        if n < 1:
            raise ValueError(f"redo needs n >= 1, not {n}")
        if pos >= len(self.entries):
            return self._refused("redo", "nothing to redo: no op was undone since the last op")
        return self._jump("redo", min(len(self.entries), pos + n))

    def goto(self, index: int) -> Event:
        """Jump to the state right after op `index` (-1: the start), undone ops included."""
        if not -1 <= index < len(self.entries):
            raise ValueError(
                f"no op {index} in the history: give -1 (the start) to {len(self.entries) - 1}"
            )
        return self._jump("goto", index + 1)

    def _refused(self, op: str, message: str) -> Event:
        s = self.loop
        error = OpError("UsageError", message, "Nothing was done; the state is unchanged.")
        return Event(
            index=len(s.events),
            op=op,
            summary=f"UsageError: {message}",
            loss=s.loss_value,
            error=error,
        )

    def _jump(self, op: str, target: int) -> Event:
        if self.unavailable is not None:
            return self._refused(op, f"history is unavailable: {self.unavailable}")
        started = time.perf_counter()
        before = self.position
        self.travel(target)
        s = self.loop
        warnings = []
        if self.divergence is not None:
            warnings.append(Finding("replay-diverged", self.divergence))
        index = len(s.events) if target < before else len(s.events) - 1
        if op == "redo":
            index = len(s.events) - 1
        return Event(
            index=index,
            op=op,
            summary=self._describe(op, before, target),
            loss=s.loss_value,
            warnings=tuple(warnings),
            seconds=time.perf_counter() - started,
            observer_errors=self.take_errors(),
        )

    def _describe(self, op: str, before: int, target: int) -> str:
        def at(position: int) -> str:
            if position == 0:
                return "the start"
            return f"after #{position - 1} {self.entries[position - 1].event.op}"

        if target == before:
            return f"already {at(target)}"
        lo, hi = min(before, target), max(before, target)
        if hi - lo == 1:
            ops = f"#{lo} {self.entries[lo].event.op}"
        else:
            ops = f"{hi - lo} ops (#{lo}–#{hi - 1})"
        verb = "undid" if target < before else "redid"
        return f"{verb} {ops}; now {at(target)}"

    def travel(self, target: int) -> None:
        """Make the loop's state the one after `target` ops of the history."""
        if self.unavailable is not None:
            raise HistoryError(self.unavailable)
        if not 0 <= target <= len(self.entries):
            raise HistoryError(f"position {target} is outside the history")
        self.divergence = None
        pos = self.position
        need = target
        for i in range(target - 1, -1, -1):
            event = self.entries[i].event
            if event.op == "forward" and event.ok:
                need = i
                break
        ck = max((c for c in self.checkpoints if c.position <= need), key=lambda c: c.position)
        if not pos <= target or pos < ck.position:
            self._restore(ck)
        self._replay(self.position, target)

    def _replay(self, start: int, target: int) -> None:
        s = self.loop
        capture = s.capture_graph
        last_forward = max(
            (i for i in range(start, target) if self.entries[i].event.op == "forward"),
            default=start,
        )
        self.replaying = True
        quiet = io.StringIO()  # what the scenario printed when the ops first ran, not again
        try:
            with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
                self._replay_ops(start, target, capture, last_forward)
        finally:
            self.replaying = False
            s.capture_graph = capture
        s.events[start:] = [e.event for e in self.entries[start:target]]

    def _replay_ops(self, start: int, target: int, capture: bool, last_forward: int) -> None:
        s = self.loop
        for i in range(start, target):
            entry = self.entries[i]
            if entry.event.op == "forward" and i > start and entry.event.ok:
                # checkpoints along the way, and one before the last forward of a long
                # replay: undoing a few ops from where we land is then quick
                self._checkpoint(force=i == last_forward and target - start > 4)
                self._pending = None
            s.capture_graph = capture and i >= last_forward
            replayed = self._apply(entry)
            if self.divergence is None:
                self.divergence = _differs(i, entry.event, replayed)

    def _apply(self, entry: _Entry) -> Event:
        s = self.loop
        op = entry.event.op
        if op in LOOP_OPS:
            return s.perform_op(op)
        if op == "set" and entry.args is not None:
            return s.perform_op(op, entry.args)
        raise HistoryError(f"cannot replay op {op!r}")


def _same_loss(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return (math.isnan(a) and math.isnan(b)) or a == b


def _differs(index: int, logged: Event, replayed: Event) -> str | None:
    if logged.op != replayed.op:
        return f"op {index} replayed as {replayed.op}, logged as {logged.op}"
    if (logged.error is None) != (replayed.error is None) or (
        logged.error is not None
        and replayed.error is not None
        and logged.error.type != replayed.error.type
    ):
        return (
            f"op {index} ({logged.op}) {'failed' if replayed.error else 'succeeded'} on replay "
            f"but {'failed' if logged.error else 'succeeded'} when it ran: the scenario is not "
            "deterministic (it reads something optdbg does not restore)"
        )
    if not _same_loss(logged.loss, replayed.loss):
        return (
            f"op {index} ({logged.op}) replayed with loss {replayed.loss}, not {logged.loss}: "
            "the scenario is not deterministic (it reads something optdbg does not restore)"
        )
    return None
