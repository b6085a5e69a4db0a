"""A paused debugger over a running script (as `bdb` is to `pdb`): the UI's engine for trace.

The script runs in a worker thread under a tracer; before each of its ops the tracer calls
back here, and the script thread waits until the UI says go (`next`: this op, then pause
again; `cont`: until a warning, the breakpoint or the end). What the UI receives are
detached `Paused` outcomes and the script's printed text, never live tensors.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import fmt
from ..breakpoints import MISSING, ConditionError, Expression, evaluate
from ..debugger.commands import Command, ContinueUntil, Diagnose, Perform
from ..debugger.outcomes import Diagnosed, Outcome, Refused
from ..events import WORDS, Event, Finding
from ..graph import Graph
from ..history import TimelineEntry
from ..pitfalls import Thresholds, diagnose
from ..snapshot import Snapshot
from .detail import StepInfo
from .script import run_script
from .tracer import Pending, TracedOp, Tracer


@dataclass(frozen=True)
class Paused:
    """The script waits before `pending` (None: it has ended, with status `ended`)."""

    snapshot: Snapshot
    pending: Pending | None
    events: tuple[Event, ...]
    timeline: tuple[TimelineEntry, ...]
    graph: Graph | None
    reason: str
    """Why it paused, in words."""
    ended: int | None = None
    run: int = 0
    """Which run of the script (0, then 1 after the first restart, ...)."""
    losses: tuple[tuple[str, tuple[float, ...]], ...] = ()
    """Each loss series by the script's name for it (a GAN's errD_real, errG, ...)."""
    loss_name: str | None = None
    """The name of the latest loss (the one the graph shows)."""
    steps: tuple[StepInfo, ...] = ()
    """Each optimizer's latest step with its numbers, in the order they were created."""
    graph_error: str | None = None
    """Why the latest loss has no graph, or no gradient flow (the graph watcher failed)."""


class _Output:
    """sys.stdout / sys.stderr for the script: its text goes to the UI, line by line."""

    def __init__(self, send: Callable[[str], None]) -> None:
        self._send = send
        self._buffer = ""

    def write(self, text: str) -> int:
        self._buffer += text
        *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            self._send(line)
        return len(text)

    def flush(self) -> None:
        if self._buffer:
            self._send(self._buffer)
            self._buffer = ""

    def isatty(self) -> bool:
        return False


class TraceDebugger:
    """Runs SCRIPT ARGS paused before its first op; `next`, `cont`, `stop` and `restart`
    may be called from any thread. `on_pause` and `on_output` are called in the script's
    thread."""

    def __init__(
        self,
        script: Path,
        args: list[str],
        on_pause: Callable[[Paused], None],
        on_output: Callable[[str], None],
        max_ops: int | None = None,
        thresholds: Thresholds | None = None,
        rank: int | None = None,
    ) -> None:
        self.script = script
        self.thresholds = thresholds
        self.rank = rank
        """Under torchrun: this process's rank (its records carry it; DDP is compared)."""
        self.args = args
        self.on_pause = on_pause
        self.on_output = on_output
        self.max_ops = max_ops
        self.condition: Expression | None = None
        """The `k` breakpoint: `cont` stops right after an op at which it holds."""
        self.stop_on_warning = True
        self._cond = threading.Condition()
        self._go = False
        self._waiting = False
        """The script thread waits in `_pause` (before an op)."""
        self._mode = "next"
        self._checked = 0
        self._run = -1
        self._thread: threading.Thread | None = None
        self.tracer: Tracer | None = None
        self._target = 0
        """Fast-forward: run without pausing until this many ops are done."""
        self._previous: list[tuple[str, str, float | None]] = []
        """(op, where, loss) of each op of the run before the restart: the replay's check."""
        self.diverged: int | None = None
        """The first op at which this run differed from the one before the restart."""

    # ------------------------------------------------------------------ commands

    def execute(self, command: Command) -> Outcome | None:
        """Carry out one of the façade's commands that a script has an equivalent for:
        `Perform("next")` (this op, then pause), `ContinueUntil` (its condition and
        warnings become the breakpoint; then `cont`), `Diagnose`.

        Returns:
            None when the script was released: the outcome arrives as a `Paused` through
            `on_pause`. `Diagnosed` at once; `Refused` (nothing changed) for another
            command, a condition that does not parse, or a script that is not paused.
        """
        if isinstance(command, Diagnose):
            events = tuple(self.tracer.events) if self.tracer is not None else ()
            return Diagnosed(tuple(diagnose(events)), len(events), None)
        if not isinstance(command, Perform | ContinueUntil) or (
            isinstance(command, Perform) and WORDS.get(command.op) != "next"
        ):
            return Refused(f"{command.label}: not available in trace (n, c)", None)
        if not self.waiting:
            return Refused(f"{command.label}: the script is not paused at an op", None)
        if isinstance(command, ContinueUntil):
            try:
                self.set_breakpoint(command.condition, command.stop_on_warning)
            except ConditionError as e:
                return Refused(f"invalid condition: {e}", None)
            self.cont()
        else:
            self.next()
        return None

    def start(self, run_to: int = 0) -> None:
        """Run the script from the beginning, paused before its first op (or, with
        `run_to`, before op `run_to`, unless it diverges from the previous run earlier)."""
        self._run += 1
        self._target, self.diverged = run_to, None
        self.tracer = Tracer(
            records=False,
            detail=True,
            max_ops=self.max_ops,
            pause=self._pause,
            thresholds=self.thresholds,
            rank=self.rank,
            on_op=self._replayed,
        )
        self._go, self._mode, self._checked = False, "ff" if run_to else "next", 0
        self._thread = threading.Thread(
            target=self._main, args=(self.tracer, self._run), name="optdbg-script", daemon=True
        )
        self._thread.start()

    def next(self) -> None:
        """Perform the paused op, then pause before the next one."""
        self._release("next")

    def cont(self) -> None:
        """Run until a warning (when `stop_on_warning`), the breakpoint, or the end."""
        self._release("cont")

    def set_breakpoint(self, text: str, stop_on_warning: bool) -> None:
        """Where `cont` stops: right after an op at which the expression `text` holds ("":
        none), or (`stop_on_warning`) at a warning.

        Raises:
            ConditionError: `text` is not a breakpoint expression (nothing is changed).
        """
        self.condition = Expression(text) if text else None
        self.stop_on_warning = stop_on_warning

    def stop(self) -> None:
        """Stop the script at its next op (as if it raised there)."""
        if self.tracer is not None:
            self.tracer.stop_requested = True
        self._release("next")

    def close(self, timeout: float = 5.0) -> None:
        """Stop the script and wait for it to end (PyTorch restored), at most `timeout`."""
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout)

    def restart(self, timeout: float = 10.0, run_to: int = 0) -> bool:
        """Stop the script and run it again from the start, fast-forwarding to op `run_to`
        (each op checked against this run's: a different op, line or loss is
        `replay-diverged` and stops there); False if it did not stop."""
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return False
        if self.tracer is not None:
            self._previous = [(t.event.op, t.where.short, t.event.loss) for t in self.tracer.ops]
        self.start(run_to)
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def waiting(self) -> bool:
        """The script waits before an op for `next` or `cont`."""
        with self._cond:
            return self._waiting and not self._go

    def _release(self, mode: str) -> None:
        with self._cond:
            self._mode = mode
            self._go = True
            self._cond.notify_all()

    # ------------------------------------------------------------------ the script thread

    def _main(self, tracer: Tracer, run: int) -> None:
        out, err = sys.stdout, sys.stderr
        sink = _Output(self.on_output)
        sys.stdout = sys.stderr = sink
        try:
            status = run_script(self.script, self.args, tracer)
        finally:
            sink.flush()
            sys.stdout, sys.stderr = out, err
        why = f"the script ended with status {status}"
        if tracer.stopped is not None:
            why = f"the script was stopped ({tracer.stopped})"
        elif not tracer.events:
            why += " without calling backward(), step() or zero_grad(): no op was seen"
        self.on_pause(self._paused(tracer, None, why, run, ended=status))

    def _replayed(self, traced: TracedOp) -> None:
        """After each op of a restarted run: the same op, line and loss as before?"""
        i = traced.event.index
        if self.diverged is not None or i >= len(self._previous):
            return
        before = self._previous[i]
        now = (traced.event.op, traced.where.short, traced.event.loss)
        if _same(before, now):
            return
        self.diverged = i
        what = ("op", "line", "loss")[
            next(k for k in range(3) if not _same(before[k : k + 1], now[k : k + 1]))
        ]
        assert self.tracer is not None
        self.tracer.attach(
            [
                (
                    i,
                    Finding(
                        "replay-diverged",
                        f"the restarted script differs from its previous run at op {i}: "
                        f"{what} {_show(now, what)} where it was {_show(before, what)}. The "
                        "script is not deterministic (unseeded random numbers, data order, "
                        "time, files it changed), so fast-forwarding by op number does not "
                        "return to the same state: it stopped here.",
                    ),
                )
            ]
        )

    def _pause(self, pending: Pending) -> None:
        tracer = self.tracer
        assert tracer is not None
        with self._cond:
            why: str | None
            if self._mode == "ff" and not tracer.stop_requested:
                if self.diverged is None and len(tracer.events) < self._target:
                    return
                self._mode = "next"
                why = (
                    f"fast-forwarded to op {len(tracer.events)}: the same ops, lines and "
                    "losses as the previous run"
                    if self.diverged is None
                    else f"warning replay-diverged at op {self.diverged}: fast-forward stopped"
                )
            elif self._mode == "cont" and not tracer.stop_requested:
                why = self._stop_reason(tracer)
                if why is None:
                    return
            elif not tracer.events:
                why = "paused before the script's first op"
            else:
                why = "paused"
            self._checked = len(tracer.events)
            self._go, self._waiting = False, True
            self.on_pause(self._paused(tracer, pending, why, self._run))
            while not self._go:
                self._cond.wait()
            self._waiting = False

    def _stop_reason(self, tracer: Tracer) -> str | None:
        """Why `cont` stops before this op: an op since the last check warned or met the
        breakpoint (a warning can land on an earlier op: see the tracer's module doc)."""
        for i in range(self._checked, len(tracer.events)):
            event = tracer.events[i]
            if self.stop_on_warning and event.warnings:
                return f"warning {event.warnings[0].code} at op {event.index}"
            if self.condition is not None and self._holds(tracer, i):
                return f"breakpoint {self.condition.text} at op {event.index}"
        self._checked = tracer.settled()
        return None

    def _holds(self, tracer: Tracer, index: int) -> bool:
        event = tracer.events[index]
        where = tracer.ops[index].where.short
        assert self.condition is not None
        env = {name: _value(tracer, event, where, name) for name in self.condition.names}
        return evaluate(self.condition.tree, env) is True

    def _paused(
        self, tracer: Tracer, pending: Pending | None, why: str, run: int, ended: int | None = None
    ) -> Paused:
        title = f"trace {self.script.name}"
        if self.rank is not None:
            title += f" (rank {self.rank})"
        timeline = tuple(
            TimelineEntry(
                index=t.event.index,
                op=t.event.op,
                summary=f"{t.where.short} {t.event.summary}",
                loss=t.event.loss,
                ok=t.event.ok,
                undone=False,
                checkpoint=False,
            )
            for t in tracer.ops
        )
        return Paused(
            snapshot=tracer.snapshot(title, pending.op if pending else ""),
            pending=pending,
            events=tuple(tracer.events),
            timeline=timeline,
            graph=tracer.graph,
            reason=why,
            ended=ended,
            run=run,
            losses=tuple((k, tuple(v)) for k, v in tracer.loss_series.items()),
            loss_name=tracer.loss_name,
            steps=tuple(
                tracer.last_steps[o.label]
                for o in tracer.optimizers
                if o.label in tracer.last_steps
            ),
            graph_error=tracer.graph_error,
        )


def _same(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    """Equal, a NaN loss equal to a NaN loss."""
    return len(a) == len(b) and all(
        x == y
        or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
        for x, y in zip(a, b, strict=True)
    )


def _show(op: tuple[str, str, float | None], what: str) -> str:
    kind, where, loss = op
    return {"op": kind, "line": where, "loss": fmt.num(loss)}[what]


def _value(tracer: Tracer, event: Event, where: str, name: str) -> Any:
    """A breakpoint name's value right after `event` (the names of engine.breakpoints)."""
    if name == "loss":
        return MISSING if tracer.loss_value is None else tracer.loss_value
    if name == "step":
        return tracer.step_count
    if name in ("epoch", "batch"):
        return 0
    if name == "iteration":
        return tracer.forward_count
    if name == "grad_norm":
        grads = [t.tensor.grad for t in tracer.tracks if t.tensor.grad is not None]
        if not grads:
            return MISSING
        return math.sqrt(sum(float(torch.linalg.vector_norm(g)) ** 2 for g in grads))
    if name == "warnings":
        return event.codes()
    if name == "lr":
        groups = tracer.param_groups
        lr = groups[0].get("lr") if groups else None
        return MISSING if lr is None else float(lr)
    if name == "op":
        return event.op
    if name == "where":
        return where
    return MISSING
