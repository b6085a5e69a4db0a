"""The Session: performs training-loop ops exactly as plain PyTorch and records each one."""

from __future__ import annotations

import inspect
import math
import threading
import time
import traceback
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import fmt, hyper
from .breakpoints import Condition, RunResult, run_until
from .errors import ScenarioError, failure, message_of, type_of
from .events import LOOP_OPS, WORDS, Event, OpError
from .explain import UNCHANGED, explain, explain_step
from .graph import BackwardStep, FlowRecorder, ForwardCapture, Graph, extract_nodes, module_names
from .graph import with_flow as graph_with_flow
from .guard import UserInterrupt, scenario_code
from .history import History, RngState, TimelineEntry, find_generators
from .history.copies import tensors_in
from .history.travel import check_history_mb
from .loop import GradState, LoopCheckpoint, grad_received, grad_state
from .manual import NAME as MANUAL_NAME
from .manual import ManualUpdate, coefficient_value
from .norms import forget as forget_norms
from .norms import prefetch, shared_norms
from .pitfalls import Detectors, Diagnosis, diagnose
from .scenario import Scenario, batch_count, grad_tensors, load, load_exception, scenario_argv
from .snapshot import (
    PROOF_BYTES,
    ParamSnapshot,
    Snapshot,
    TensorView,
    ViewMemo,
    plain,
    same_bits,
    shared_views,
    view,
)

STATE_DETAIL_LIMIT = 1 << 16
"""Optimizer state of parameters up to this size is copied before each step (for the
update rule); bigger parameters show only the state after the step."""


PATH_LIMIT = 64
"""Models with at most this many parameter elements keep their trajectory (the values
after every step), for the loss landscape."""

RECORD_COPY_BYTES = 64 << 20
"""A parameter bigger than this keeps its step record as summaries (`RecordViews`: taken at
the step, the value before from the summary already shown) instead of copies: its copy
before the step is turned into the update in place, summarized and freed once the step op
ends, and its grad is not kept alive past zero_grad (a 10^8-element parameter would
otherwise hold 1.2 GB of copies)."""


class UsageError(Exception):
    """An op that cannot run in the session's current state (e.g. backward before forward)."""


@dataclass
class _ParamTrack:
    name: str
    tensor: torch.Tensor
    group: int
    accumulated: int = 0


@dataclass(frozen=True)
class RecordViews:
    """A big parameter's step record, summarized at the step (see RECORD_COPY_BYTES)."""

    before: TensorView
    after: TensorView
    delta: TensorView
    grad: TensorView | None


@dataclass
class StepRecord:
    """One parameter's part in the last step: detached copies (grad kept by reference
    while it cannot change; copied before any op that would mutate it). A big parameter's
    record holds them only during the step op; then `views` (and the tensors are None)."""

    before: torch.Tensor | None
    after: torch.Tensor | None
    grad: torch.Tensor | None
    grad_version: int
    state_before: dict[str, Any]
    hyper: dict[str, Any]
    views: RecordViews | None = None
    pending: tuple[TensorView | None, TensorView | None] | None = None
    """A big parameter's views before the step (value, grad) as shown already, until the
    step op ends (None inside: summarized from the copies then)."""


@dataclass(frozen=True)
class _SavedStep:
    record: StepRecord
    grad_is_live: bool
    """The record's grad was the parameter's live .grad (the history restores that)."""
    grad_ok: bool
    """... and it had not changed since the step."""


@dataclass(frozen=True)
class _SavedState:
    """The Session's part of a history checkpoint (`Session.checkpoint`)."""

    position: int
    loss_value: float | None
    step_count: int
    forward_count: int
    epoch: int
    batch: int
    next: int
    graph_error: str | None
    versions_at_forward: tuple[int, ...] | None
    last_batch: Any
    iterations_done: int
    completed: bool
    accumulated: tuple[int, ...]
    received: dict[str, TensorView | float | None]
    steps: dict[str, _SavedStep]


@dataclass(frozen=True)
class UpdateDetail:
    """The numbers of the last step for one parameter, detached."""

    name: str
    optimizer: str
    hyper: dict[str, Any]
    before: TensorView
    grad: TensorView | None
    after: TensorView
    delta: TensorView
    state_before: dict[str, Any]
    state_after: dict[str, Any]
    source: tuple[str, ...] = ()
    """The manual form: step()'s source lines, numbered ("  23 | a -= ...")."""
    rule: tuple[str, str, float | None] | None = None
    """The manual form, when step() updates this parameter by the plain rule
    `p -= lr * p.grad`: (the statement, the coefficient's name, its value)."""


@dataclass(frozen=True)
class Evaluation:
    """One evaluate op's result, with where it happened in the run."""

    index: int
    """The op's index in the session."""
    forwards: int
    """Training losses recorded before it (its x position beside the loss series)."""
    values: dict[str, float]
    train_loss: float | None
    """The mean training loss since the previous evaluation (the latest loss if none)."""

    @property
    def loss(self) -> float | None:
        """The number plotted and compared: "loss" if present, else the first value."""
        if "loss" in self.values:
            return self.values["loss"]
        return next(iter(self.values.values()), None)


class Session:
    """Drives one scenario. Every op returns an immutable Event; `snapshot()` copies state out."""

    def __init__(self, scenario: Scenario, history_mb: float | None = None) -> None:
        self.scenario = scenario
        self.optimizer = scenario.optimizer
        self.events: list[Event] = []
        self.loss: torch.Tensor | None = None
        self.loss_value: float | None = None
        self.loss_history: list[float] = []
        self.loss_steps: list[int] = []
        self.step_count = 0
        self.forward_count = 0
        self.epoch = 0
        self.batch = 0
        self._data_iter: Iterator[Any] | None = None
        self._pending_batch: tuple[Any] | None = None
        """The batch a failed forward received, for the next forward (not consumed)."""
        self._versions_at_forward: tuple[int, ...] | None = None
        self._next = 0
        self._graph_cache: tuple[int, Graph] | None = None
        self._graph_fns: list[Any] = []
        self._modules: tuple[dict[int, str], dict[int, str]] | None = None
        self._trace_once = False
        self.capture_graph = False
        """Set by the TUI to watch values in the graph: extract it (node data, modules, saved
        tensors) right after each forward, and record the gradient flowing through every
        node at each backward (`graph().flow`, `graph().steps`). Off, `graph()` extracts
        lazily and a graph first read after backward has its saved tensors marked freed."""
        self.graph_error: str | None = None
        """Why the current loss's graph could not be extracted, or its gradient flow not
        recorded (the op itself completed); None when it was."""
        self._failed_forward: int | None = None
        """The forward whose loss's graph could not be extracted."""
        self._failures: list[str] = []
        """The graph watcher's failures during the op running now (its event's
        `observer_errors`)."""
        self._last_step: dict[str, StepRecord] = {}
        self.step_detail = True
        """Keep each step's record (values before and after, the grad, the state before) for
        `update_detail` and the snapshot's `last_update`. `optdbg run`, which shows neither,
        turns it off: a step then copies nothing."""
        self.summary_values = True
        """Each op's one-line summary shows values (the grads received; each parameter before
        and after the step). `optdbg run --quiet` and `--json`, which print no summary, turn
        it off: a summary then counts what the op did, and no norm is read for it."""
        self.record_copy_bytes = RECORD_COPY_BYTES
        """Parameters bigger than this keep their step record as summaries (RecordViews)."""
        self._deltas: dict[int, tuple[StepRecord, torch.Tensor]] = {}
        self._fresh_views: list[tuple[torch.Tensor, int, TensorView, bool]] = []
        """Views this op found for tensors no code but optdbg's can have written since: big
        parameters' views the graph extraction took, and the views already shown of what
        the step record copies (a copy's view is its original's). The memo keeps them
        (tensor, version, view, whether the tensor is optdbg's own copy) once the op ends."""
        self._performing = False
        self._received: dict[str, TensorView | float | None] = {}
        self._added: dict[str, TensorView | float | None] = {}
        """During a backward: what it added to each `.grad` that held an earlier one."""
        self._views = ViewMemo(PROOF_BYTES)
        """The views (summaries) of tensors shown so far, kept across ops that cannot change a
        tensor without moving its version counter (see `keeps_views`), and proven by a
        bit-exact compare after the others."""
        self._params = [
            _ParamTrack(name, p, g)
            for g, group in enumerate(self.optimizer.param_groups)
            for (name, p) in self._names_of(group["params"])
        ]
        self.pattern = scenario.pattern
        """The ops of one iteration (`i`, `n` and `c` follow it)."""
        self.iterations_done = 0
        """Whole patterns completed (by i, n, c, or the same ops typed one by one)."""
        self.completed = False
        """The last op completed the iteration pattern."""
        self.evaluations: list[Evaluation] = []
        self._evaluation: dict[str, float] | None = None
        self._zero_sets_none = _zero_grad_sets_none(self.optimizer)
        self.last_batch: Any = None
        """The batch the latest forward used (None without `data` or before a forward)."""
        small = sum(t.tensor.numel() for t in self._params) <= PATH_LIMIT
        self._path: list[tuple[float, ...]] = [self._point()] if small else []
        if isinstance(self.optimizer, ManualUpdate):
            self._zero_sets_none = self.optimizer.scenario_zero_grad is None
        self.detectors = Detectors.for_scenario(self, scenario)
        """The pitfall detectors: their warnings land on each op's event; `pending` holds
        what was found at load (attached to the first event)."""
        self.history = History(self, history_mb, observers=(self.detectors,))
        """The op log and checkpoints behind undo/redo/goto, within `history_mb` megabytes
        (default: the scenario's optdbg_config["history_mb"], else 256)."""

    # the LoopState that observers read (engine.loop) ----------------------

    @property
    def tracks(self) -> list[_ParamTrack]:
        return self._params

    @property
    def received(self) -> dict[str, TensorView | float | None]:
        return self._received

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    @property
    def scheduler(self) -> Any | None:
        return self.scenario.scheduler

    @property
    def moved(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Each parameter the last step moved: its value before and after (detached copies)."""
        return {
            n: (r.before, r.after)
            for n, r in self._last_step.items()
            if r.before is not None and r.after is not None
        }

    @property
    def summarized_steps(self) -> tuple[str, ...]:
        """The parameters whose last step kept summaries, not copies (RECORD_COPY_BYTES)."""
        return tuple(n for n, r in self._last_step.items() if r.views is not None)

    @property
    def optimizer_stepped(self) -> bool:
        return bool(getattr(self.optimizer, "_opt_called", False))

    def _names_of(self, params: list[torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
        by_id = {id(p): n for n, p in self.scenario.params}
        return [(by_id[id(p)], p) for p in params]

    @classmethod
    def open(
        cls,
        spec: str | Path,
        history_mb: float | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Session:
        """Load a scenario (path or built-in name), with `--set` overrides, and start a
        session on it. The scenario's own objects raising while optdbg reads them (a
        module whose `named_modules` fails) is a ScenarioError at their line too; a bad
        `history_mb` argument is the caller's ValueError, raised before anything loads."""
        if history_mb is not None:
            check_history_mb(history_mb)
        scenario = load(spec, overrides)
        try:
            return cls(scenario, history_mb)
        except ScenarioError:
            raise
        except Exception as e:
            raise load_exception(e, str(scenario.path), reading=True) from None

    # ----------------------------------------------------------------- ops

    @property
    def next_op(self) -> str:
        return self.pattern[self._next]

    @property
    def optimizer_name(self) -> str:
        """The optimizer's class name, or "step()" for the manual update form."""
        if isinstance(self.optimizer, ManualUpdate):
            return MANUAL_NAME
        return type(self.optimizer).__name__

    def perform(self, word: str, after: Callable[[Event], None] | None = None) -> list[Event]:
        """Perform an op given by its CLI word; `iteration` and `next` may yield an
        evaluation too (optdbg_config["evaluate_every"]). `after(event)` is called right
        after each op (an iteration's too: e.g. to copy each op's values out)."""
        op = WORDS.get(word)
        if op is None:
            raise ValueError(f"unknown op {word!r}; expected one of: {', '.join(WORDS)}")
        if op == "iteration":
            return list(self.iteration(after))
        if op == "next":
            events = [self.next()]
            if after is not None:
                after(events[0])
            due = self.due_evaluation() if events[0].ok else None
        else:
            events, due = [getattr(self, op)()], None
            if after is not None:
                after(events[0])
        if due is not None:
            events.append(due)
            if after is not None:
                after(due)
        return events

    def next(self) -> Event:
        """Perform the next op of the iteration pattern (default forward → backward → step
        → zero_grad)."""
        return getattr(self, self.next_op)()  # type: ignore[no-any-return]

    def iteration(self, after: Callable[[Event], None] | None = None) -> tuple[Event, ...]:
        """One whole iteration pattern, then the evaluation if one is due; stops at the
        first error. `after(event)` is called right after each op."""
        events = []
        for op in self.pattern:
            event = getattr(self, op)()
            events.append(event)
            if after is not None:
                after(event)
            if not event.ok:
                return tuple(events)
        due = self.due_evaluation()
        if due is None:
            return tuple(events)
        if after is not None:
            after(due)
        return (*events, due)

    def due_evaluation(self) -> Event | None:
        """After an op that completed the pattern: the evaluation `evaluate_every` asks for
        now (every N iterations, or at the end of each epoch), performed; else None."""
        every = self.scenario.evaluate_every
        if every is None or not self.completed:
            return None
        if every == "epoch":
            per = _length(self.scenario.data)
            if per is None or self.batch != per:
                return None
        elif self.iterations_done % int(every):
            return None
        return self.evaluate()

    def evaluate(self) -> Event:
        return self._run("evaluate", self._evaluate)

    def forward(self) -> Event:
        return self._run("forward", self._forward)

    def backward(self) -> Event:
        return self._run("backward", self._backward)

    def step(self) -> Event:
        return self._run("step", self._step)

    def zero_grad(self) -> Event:
        return self._run("zero_grad", self._zero_grad)

    def _run(self, op: str, body: Callable[[], str]) -> Event:
        with shared_norms():  # the summary line and the detectors measure each tensor once
            return self._perform(op, body)

    def _perform(self, op: str, body: Callable[[], str]) -> Event:
        self._performing, self._fresh_views = True, []
        try:
            return self._perform_op(op, body)
        finally:
            self._performing = False
            self._settle_records(memo=False)  # an op cut short (e.g. Ctrl-C) settles too

    def _perform_op(self, op: str, body: Callable[[], str]) -> Event:
        start = time.perf_counter()
        error = None
        summary = ""
        self.history.before_op(op)
        self.detectors.before(self, op)
        before = self._fingerprint()
        self._evaluation = None
        self._failures = []
        try:
            with scenario_code(self.scenario.notes), scenario_argv(str(self.scenario.path)):
                summary = body()
        except UsageError as e:
            error = OpError("UsageError", str(e), f"Nothing was done; {UNCHANGED}.")
        except _ScenarioFailure as e:
            error = e.error
        except UserInterrupt:
            raise
        except BaseException as e:  # PyTorch (or the scenario) refused the op: record it
            message = message_of(e)
            error = OpError(type_of(e), message, explain(message, self._stepped_since_forward))
        if error is not None:
            error = self._truthful(error, before)
        self.completed = False
        if error is None:
            self._advance(op)
            summary = summary or op
        else:
            first = error.message.splitlines()[0] if error.message.strip() else ""
            summary = f"{error.type}: {first}" if first else error.type
        found = self.detectors.after(self, op, error, ())
        event = Event(
            index=len(self.events),
            op=op,
            summary=summary,
            loss=self.loss_value,
            warnings=found,
            error=error,
            seconds=time.perf_counter() - start,
            evaluation=self._evaluation if error is None else None,
            observer_errors=self._observer_errors(),
        )
        self.events.append(event)
        self.history.after_op(event)
        if not self.keeps_views(op):
            self._views.suspect()
        for t, version, seen, private in self._fresh_views:  # taken after the op's code ran
            if t._version == version:
                self._views.put(t, seen, private=private)
        self._fresh_views = []
        self._settle_records()
        return event

    def _observer_errors(self) -> tuple[str, ...]:
        """What the observers failed to do during the op just performed (each says it once)."""
        graph, self._failures = self._failures, []
        return (*self.history.take_errors(), *self.detectors.take_errors(), *graph)

    def keeps_views(self, op: str) -> bool:
        """Whether the tensor summaries shown before `op` (snapshots, `--json` records) stay
        valid after it without a bit-exact check: True for an op that runs only PyTorch's own
        code on the tensors, which changes them in place only by ops that move their version
        counters: backward (autograd's accumulation), a torch.optim optimizer's own
        zero_grad, and its own step unless fused (see `_plain_step`). A forward or evaluate
        runs the scenario's code (which may write through `.data`); a fused step (fused
        Adam) writes without moving the counters."""
        if op == "backward":
            return True
        if op == "zero_grad":
            return _torch_own(self.optimizer, "zero_grad")
        return op == "step" and self._plain_step()

    def _plain_step(self) -> bool:
        """The step is a torch.optim optimizer's own, unfused, with no hook or scheduler of
        the scenario's in it: it writes only by ops that move version counters (a fused
        step writes behind them; scenario code may write through `.data`)."""
        o = self.optimizer
        if isinstance(o, ManualUpdate) or not _torch_own(o, "step"):
            return False
        if any(g.get("fused") for g in o.param_groups):
            return False
        if o._optimizer_step_pre_hooks or o._optimizer_step_post_hooks:
            return False
        from torch.optim import optimizer as module  # loaded: the scenario made an optimizer

        hooks = [
            *module._global_optimizer_pre_hooks.values(),
            *module._global_optimizer_post_hooks.values(),
        ]
        if any(not getattr(h, "__module__", "").startswith(_OWN) for h in hooks):
            return False
        return self.scenario.scheduler is None or self.scenario.scheduler_every != "step"

    def _fingerprint(self) -> tuple[Any, ...]:
        """What a failed op must leave as it was: counters, loss, data position, parameters
        and grads (by version: changed in place or replaced) and hyperparameters."""
        tensors = tuple(
            (t.tensor._version, id(g := t.tensor.grad), _version(g), t.accumulated)
            for t in self._params
        )
        counters = (self.step_count, self.forward_count, self.epoch, self.batch)
        hyper = tuple(
            tuple((k, repr(v)) for k, v in g.items() if k != "params")
            for g in self.optimizer.param_groups
        )
        return counters, id(self.loss), self._data_iter is None, tensors, hyper

    def _truthful(self, error: OpError, before: tuple[Any, ...]) -> OpError:
        """The error, whose claim that the state is unchanged holds; otherwise it says what
        changed before the op failed."""
        if UNCHANGED not in error.explanation:
            return error
        after = self._fingerprint()
        if after == before:
            return error
        names = ("counters", "loss", "data position", "parameters and grads", "hyperparameters")
        changed = [n for n, a, b in zip(names, after, before, strict=True) if a != b]
        if after[3] != before[3]:
            moved = [
                t.name for t, a, b in zip(self._params, after[3], before[3], strict=True) if a != b
            ]
            changed[changed.index("parameters and grads")] = "in place: " + ", ".join(moved[:4])
        what = "; ".join(changed)
        return OpError(
            error.type,
            error.message,
            error.explanation.replace(UNCHANGED, f"it changed this before failing: {what}"),
        )

    @property
    def _stepped_since_forward(self) -> bool:
        """A parameter changed in place (a step) after the forward of the current loss."""
        return self._versions_at_forward is not None and self._versions_at_forward != tuple(
            t.tensor._version for t in self._params
        )

    def _advance(self, op: str) -> None:
        """The pattern's next op after `op`: the following one when `op` was the expected
        one, else the one after `op`'s first place in the pattern."""
        pattern = self.pattern
        if op not in pattern:
            return
        if pattern[self._next] == op:
            self._next = (self._next + 1) % len(pattern)
        else:
            self._next = (pattern.index(op) + 1) % len(pattern)
        if self._next == 0:
            self.completed = True
            self.iterations_done += 1

    # the history's protocol (engine.loop.Checkpointable) -----------------

    def perform_op(self, op: str, args: tuple[Any, ...] = ()) -> Event:
        """Perform a loop op by its name (forward, backward, step, zero_grad, evaluate), or
        a hyperparameter set ("set", args: group, key, value)."""
        if op == "set":
            return self.set_hyper(*args)
        if op not in LOOP_OPS:
            raise ValueError(f"not a loop op: {op!r}; expected one of: {', '.join(LOOP_OPS)}")
        return getattr(self, op)()  # type: ignore[no-any-return]

    def checkpoint(self) -> LoopCheckpoint:
        """The session's own state, detached: counters, the accumulation bookkeeping, the
        latest backward's received grads and the last step's records."""
        steps = {
            t.name: _SavedStep(
                rec,
                rec.grad is not None and rec.grad is t.tensor.grad,
                rec.grad is not None and rec.grad._version == rec.grad_version,
            )
            for t in self._params
            if (rec := self._last_step.get(t.name)) is not None
        }
        held: dict[int, torch.Tensor] = {}
        for saved in steps.values():
            r = saved.record
            for tensor in (r.before, r.after, r.grad, *tensors_in(r.state_before)):
                if tensor is not None:
                    held.setdefault(id(tensor), tensor)
        state = _SavedState(
            position=len(self.events),
            loss_value=self.loss_value,
            step_count=self.step_count,
            forward_count=self.forward_count,
            epoch=self.epoch,
            batch=self.batch,
            next=self._next,
            graph_error=self.graph_error,
            versions_at_forward=self._versions_at_forward,
            last_batch=self.last_batch,
            iterations_done=self.iterations_done,
            completed=self.completed,
            accumulated=tuple(t.accumulated for t in self._params),
            received=dict(self._received),
            steps=steps,
        )
        drawn = self.batch if self._data_iter is not None else None
        return LoopCheckpoint(drawn, tuple(held.values()), state)

    def restore(self, saved: LoopCheckpoint, batches: Iterator[Any] | None) -> None:
        """Put back what `checkpoint` returned (the history has restored the tensors and the
        optimizer); the loss and its graph are gone, and the ops after it forgotten."""
        state = saved.state
        assert isinstance(state, _SavedState)
        self.loss_value, self.step_count = state.loss_value, state.step_count
        self.forward_count, self.epoch, self.batch = state.forward_count, state.epoch, state.batch
        self._next, self.graph_error = state.next, state.graph_error
        self._versions_at_forward, self.last_batch = state.versions_at_forward, state.last_batch
        self.iterations_done, self.completed = state.iterations_done, state.completed
        for track, accumulated in zip(self._params, state.accumulated, strict=True):
            track.accumulated = accumulated
        self._received = dict(state.received)
        self._last_step = self._restored_steps(state.steps)
        self.loss = None
        self._graph_cache, self._graph_fns, self._failed_forward = None, [], None
        keep = [i for i, step in enumerate(self.loss_steps) if step < state.position]
        self.loss_history[:] = [self.loss_history[i] for i in keep]
        self.loss_steps[:] = [self.loss_steps[i] for i in keep]
        self.evaluations[:] = [e for e in self.evaluations if e.index < state.position]
        self._pending_batch = None  # the restored position draws it again
        self._data_iter = batches

    def _restored_steps(self, steps: dict[str, _SavedStep]) -> dict[str, StepRecord]:
        """The saved step records, each grad that was the live .grad bound to it again."""
        tracks = {t.name: t for t in self._params}
        out = {}
        for name, saved in steps.items():
            rec = saved.record
            grad, version = rec.grad, rec.grad_version
            live = tracks[name].tensor.grad
            if saved.grad_is_live and live is not None:
                grad = live
                version = live._version if saved.grad_ok else live._version - 1
            out[name] = StepRecord(
                before=rec.before,
                after=rec.after,
                grad=grad,
                grad_version=version,
                state_before=rec.state_before,
                hyper=rec.hyper,
                views=rec.views,
            )
        return out

    # time travel ----------------------------------------------------------

    def undo(self, n: int = 1) -> Event:
        """Go back `n` ops (to the start at most); the Event (op "undo") is not logged."""
        self._views.clear()
        return self.history.undo(n)

    def redo(self, n: int = 1) -> Event:
        """Perform again the `n` ops undone last (a new op drops them)."""
        self._views.clear()
        return self.history.redo(n)

    def goto(self, index: int) -> Event:
        """Jump to the state right after op `index` of the history (-1: the start)."""
        self._views.clear()
        return self.history.goto(index)

    def timeline(self, start: int = 0, stop: int | None = None) -> tuple[TimelineEntry, ...]:
        """The ops of the history from `start` to `stop` (excluded), undone ones included
        (`undone=True`), for a history view."""
        return self.history.timeline(start, stop)

    def set_hyper(self, group: int, key: str, value: Any) -> Event:
        """`optimizer.param_groups[group][key] = value`, validated (HyperError when refused),
        logged as op "set" and observed like any op (the detectors' warnings on its Event)."""
        self._views.clear()
        started = time.perf_counter()
        groups = self.optimizer.param_groups
        value = hyper.checked(groups, group, key, value)
        old = groups[group][key]
        self.history.before_op("set")
        self.detectors.before(self, "set")
        hyper.assign(self.optimizer, group, key, value)
        event = Event(
            index=len(self.events),
            op="set",
            summary=hyper.edit_summary(groups, group, key, old, value),
            loss=self.loss_value,
            warnings=self.detectors.after(self, "set", None, ()),
            seconds=time.perf_counter() - started,
            observer_errors=self._observer_errors(),
        )
        self.events.append(event)
        self.history.after_op(event, (group, key, value))
        return event

    def run_until(
        self,
        condition: Condition | str | None = None,
        max_iterations: int | None = None,
        stop: threading.Event | None = None,
        on_progress: Callable[[Event], None] | None = None,
        progress_interval: float = 0.0,
    ) -> RunResult:
        """Run whole iterations until `condition` holds right after an op, `max_iterations`
        are done, `stop` is set (from any thread) or an op fails (see engine.breakpoints)."""
        return run_until(self, condition, max_iterations, stop, on_progress, progress_interval)

    # forward -------------------------------------------------------------

    def _forward(self) -> str:
        """Call the scenario's forward; a forward that fails leaves no trace: the random
        state is put back, and the batch it received is kept for the next forward."""
        rng = RngState.capture(self.history.generators)
        epoch, batch_no, data_iter = self.epoch, self.batch, self._data_iter
        batch: Any = _NO_BATCH
        try:
            batch = self._next_batch() if self.scenario.data is not None else None
            loss, value, capture = self._call_forward(batch)
        except _ScenarioFailure:
            rng.restore(self.history.generators)
            if batch is not _NO_BATCH and self.scenario.data is not None:
                if self._data_iter is data_iter:
                    self._pending_batch = (batch,)
                else:  # a new epoch began: iterating again from this random state redoes it
                    self._data_iter = None
                self.epoch, self.batch = epoch, batch_no
            raise
        self.loss = loss
        self._versions_at_forward = tuple(t.tensor._version for t in self._params)
        self.last_batch = batch
        self._graph_cache, self._failed_forward = None, None
        self._graph_fns = []
        self.forward_count += 1
        if capture is not None:
            self._extract(capture)
        if value is not None:
            self.loss_value = value
            self.loss_history.append(value)
            self.loss_steps.append(len(self.events))
            summary = f"loss = {fmt.num(value)}"
        elif self.scenario.backward_gradient is not None:
            self.loss_value = None
            summary = f"loss has shape {fmt.shape(tuple(loss.shape))} (backward_gradient given)"
        else:
            self.loss_value = None
            summary = f"loss has shape {fmt.shape(tuple(loss.shape))} (not a scalar)"
        if self.scenario.data is not None:
            summary += f" (epoch {self.epoch}, batch {self.batch})"
        return summary

    def _call_forward(self, batch: Any) -> tuple[torch.Tensor, float | None, Any]:
        """The scenario's loss for `batch`, checked, with its value (None when not a scalar);
        _ScenarioFailure when forward raised or returned something that is not a loss."""
        capture = ForwardCapture(self._module_maps()[0]) if self.capture_graph else None
        where = self.scenario.location(self.scenario.forward_line)
        try:
            with capture or nullcontext():
                loss = self.scenario.forward(batch)
        except UserInterrupt:
            raise
        except BaseException as e:  # sys.exit(), KeyboardInterrupt...: the scenario's error
            raise _ScenarioFailure(self._forward_error(e)) from None
        if not isinstance(loss, torch.Tensor):
            raise _ScenarioFailure(
                OpError(
                    "TypeError",
                    f"forward returned a {fmt.name(type(loss).__name__)}, not a tensor",
                    f"{where}: forward must return the loss as a scalar torch tensor, e.g. "
                    f"`return ((w - 3) ** 2).sum()`; {UNCHANGED}.",
                )
            )
        if loss.is_complex():
            raise _ScenarioFailure(
                OpError(
                    "TypeError",
                    f"forward returned a complex loss ({str(loss.dtype).removeprefix('torch.')})",
                    f"{where}: a loss must be real: PyTorch refuses backward() of a complex "
                    f"loss. Return a real number, e.g. its .abs() or .real; {UNCHANGED}.",
                )
            )
        if loss.numel() != 1:
            return loss, None, capture
        try:
            value = loss.detach().item()
        except Exception as e:
            raise _ScenarioFailure(
                OpError(
                    type_of(e),
                    message_of(e),
                    f"{where}: forward returned a loss whose value cannot be read (.item() "
                    f"failed on a {loss.device.type} tensor); return a loss computed from "
                    f"the parameters; {UNCHANGED}.",
                )
            ) from None
        return loss, value, capture

    def _next_batch(self) -> Any:
        data = self.scenario.data
        assert data is not None
        if self._pending_batch is not None:  # the batch a failed forward received
            (batch,) = self._pending_batch
            self._pending_batch = None
            self.batch += 1
            return batch
        if self._data_iter is not None:
            try:
                batch = next(self._data_iter)
            except StopIteration:
                self._data_iter = None
                if self.scenario.scheduler is not None and self.scenario.scheduler_every == "epoch":
                    self.scenario.scheduler.step()
            except UserInterrupt:
                raise
            except BaseException as e:  # the scenario's iterable failed mid-epoch
                raise _ScenarioFailure(self._forward_error(e, "iterating `data`")) from None
            else:
                self.batch += 1
                return batch
        self.history.epoch_starting()
        try:
            self._data_iter = iter(data)
            batch = next(self._data_iter)
        except StopIteration:
            one_shot = self._data_iter is data and self.epoch > 0
            self._data_iter = None
            why = (
                "`data` is a one-shot iterator (e.g. a generator) that the first epoch "
                "used up, so the next epoch has no batches. Make it re-iterable: a list "
                "or a DataLoader."
                if one_shot
                else "`data` is empty, so there is nothing to feed forward. Give it at "
                "least one batch."
            )
            raise _ScenarioFailure(
                OpError(
                    "StopIteration",
                    "`data` yielded no batches",
                    f"{self.scenario.location(None)}: {why} Nothing was done; {UNCHANGED}.",
                )
            ) from None
        except UserInterrupt:
            raise
        except BaseException as e:
            raise _ScenarioFailure(self._forward_error(e, "iterating `data`")) from None
        self.epoch += 1
        self.batch = 1
        return batch

    def _forward_error(self, e: BaseException, doing: str = "forward") -> OpError:
        file = str(self.scenario.path)
        line = None
        for frame, lineno in traceback.walk_tb(e.__traceback__):
            if frame.f_code.co_filename == file:
                line = lineno
        message = message_of(e)
        where = self.scenario.location(line or self.scenario.forward_line)
        hint = explain(message, self._stepped_since_forward)
        if hint.startswith("PyTorch refused"):
            hint = f"Fix the scenario there, then reload (r); {UNCHANGED}."
        return OpError(type_of(e), message, f"{where}: raised while {doing}. {hint}")

    # backward ------------------------------------------------------------

    def _added_hook(self, track: _ParamTrack) -> Callable[[torch.Tensor], None]:
        """What a backward adds to a `.grad` that holds an earlier one: its values when
        small, else its norm (the incoming gradient, as autograd computed it)."""

        def hook(grad: torch.Tensor) -> None:
            small = grad.numel() <= 8
            self._added[track.name] = view(grad) if small else float(grad.detach().norm())

        return hook

    def _adding_hooks(self) -> list[Any]:
        """Hooks on the parameters whose `.grad` a backward would add to (none after a
        zero_grad: a plain loop's backward then runs no Python hook)."""
        return [
            t.tensor.register_hook(self._added_hook(t))
            for t in self._params
            if t.tensor.requires_grad and t.tensor.grad is not None and t.accumulated
        ]

    def _note_received(self, before: list[GradState]) -> None:
        """The parameters whose `.grad` the backward changed (replaced, or added to in
        place: its version counter moved), in order; None for a gradient into a cleared
        `.grad`, else what was added."""
        self._received = {}
        for track, was in zip(self._params, before, strict=True):
            if not grad_received(track.tensor.grad, was):
                continue
            added = self._added.get(track.name)
            self._received[track.name] = added
            track.accumulated = track.accumulated + 1 if track.name in self._added else 1
        self._added = {}

    def _backward(self) -> str:
        loss = self.loss
        if loss is None:
            raise UsageError("there is no loss to backpropagate: run forward (f) first")
        self._protect_step_grads()
        # Saved on every backward, not only on a graph already backwarded: PyTorch may
        # accumulate into some .grad before it refuses a graph (one made stale by step
        # fails at the first node whose saved tensor changed, after other branches ran).
        # After zero_grad the grads are None and this copies nothing.
        rollback = {t.name: _clone(t.tensor.grad) for t in self._params}
        before = [grad_state(t.tensor.grad) for t in self._params]
        recorder = self._flow_recorder()
        gradient = self._backward_gradient(loss)
        hooks = self._adding_hooks()
        self._received, self._added = {}, {}
        try:
            with recorder or nullcontext():
                loss.backward(gradient)
        except Exception:
            for t in self._params:
                t.tensor.grad = rollback[t.name]
            self._added = {}
            raise
        finally:
            for hook in hooks:
                hook.remove()
        if recorder is not None:
            self._record_flow(recorder)
        self._note_received(before)
        return self._backward_summary()

    def _backward_gradient(self, loss: torch.Tensor) -> torch.Tensor | None:
        """The `gradient` argument of backward: the scenario's backward_gradient (a tensor,
        or a function of the loss), else None (a scalar loss)."""
        given = self.scenario.backward_gradient
        if given is None or isinstance(given, torch.Tensor):
            return given
        try:
            gradient = given(loss)
        except Exception as e:
            raise _ScenarioFailure(self._forward_error(e, "calling backward_gradient")) from None
        if not isinstance(gradient, torch.Tensor):
            raise _ScenarioFailure(
                OpError(
                    "TypeError",
                    f"backward_gradient returned a {type(gradient).__name__}, not a tensor",
                    f"{self.scenario.location(None)}: backward_gradient(loss) must return a "
                    "tensor shaped like the loss, e.g. torch.ones_like(loss).",
                )
            )
        return gradient

    def _backward_summary(self) -> str:
        got = [t for t in self._params if t.name in self._received]
        if not got:
            return "no optimizer parameter received a gradient"
        if not self.summary_values:
            return f"{fmt.plural(len(got), 'parameter')} received a gradient"
        prefetch([t.tensor.grad for t in got])  # every received grad: the detectors read them
        return _first([f"{t.name}.grad = {fmt.brief(t.tensor.grad)}" for t in got[:2]], len(got))

    # step ----------------------------------------------------------------

    def _step(self) -> str:
        moving = [t for t in self._params if t.tensor.grad is not None]
        versions = [t.tensor._version for t in self._params]
        if not self.step_detail:
            return self._bare_step(moving, versions)
        pending = self._views_before_step(moving)
        before = {t.name: t.tensor.detach().clone() for t in moving}
        state_before = {
            t.name: _copy_state(self.optimizer.state.get(t.tensor, {}))
            for t in moving
            if t.tensor.numel() <= STATE_DETAIL_LIMIT
        }
        self._twin_views(moving, before, state_before)
        hyper = [_hyper(g) for g in self.optimizer.param_groups]
        grads = {t.name: t.tensor.grad for t in moving}
        if isinstance(self.optimizer, ManualUpdate):
            grads = self._manual_step(before)
        else:
            self.optimizer.step()
        self.step_count += 1
        if self._path:  # entries past the current step are stale after undo: replace them
            self._path[self.step_count :] = [self._point()]
        self._last_step = {}
        self._deltas = {}
        for t in moving:
            grad = grads[t.name]
            assert grad is not None
            big = t.name in pending  # the live value for now: summarized as the op ends
            self._last_step[t.name] = StepRecord(
                before=before[t.name],
                after=t.tensor.detach() if big else t.tensor.detach().clone(),
                grad=grad,
                grad_version=grad._version,
                state_before=state_before.get(t.name, {}),
                hyper=hyper[t.group],
                pending=pending.get(t.name),
            )
        gradless = self._moved_without_grad(versions)
        self._schedule()
        forget_norms()  # the step may write without moving version counters (fused)
        parts = [
            f"{t.name}: {fmt.brief(self._last_step[t.name].before)} → "
            f"{fmt.brief(self._last_step[t.name].after)}"
            for t in moving[:2]
        ]
        return self._step_summary(_first(parts, len(moving)), gradless)

    def _twin_views(
        self,
        moving: list[_ParamTrack],
        before: dict[str, torch.Tensor],
        state_before: dict[str, dict[str, Any]],
    ) -> None:
        """The step record's copies before the step have their originals' views where those
        are shown already (the update panel shows them again: not summarized twice)."""
        memo = self._views
        for t in moving:
            pairs = [(before[t.name], t.tensor)]
            state = self.optimizer.state.get(t.tensor, {})
            pairs += [(v, state[k]) for k, v in state_before.get(t.name, {}).items()]
            for copy, original in pairs:
                if isinstance(copy, torch.Tensor) and isinstance(original, torch.Tensor):
                    seen = memo.known(original)
                    if seen is not None:
                        self._fresh_views.append((copy, copy._version, seen, True))

    def _views_before_step(
        self, moving: list[_ParamTrack]
    ) -> dict[str, tuple[TensorView | None, TensorView | None]]:
        """The big parameters' views (value, grad) before the step where they are shown
        already (see RECORD_COPY_BYTES); nothing is computed here."""
        memo = self._views
        return {
            t.name: (
                memo.known(t.tensor),
                memo.known(g) if (g := t.tensor.grad) is not None else None,
            )
            for t in moving
            if t.tensor.numel() * t.tensor.element_size() > self.record_copy_bytes
        }

    def _settle_records(self, memo: bool = True) -> None:
        """Once the op has ended (its detectors have read the copies): each big parameter's
        step record becomes its summaries, its copy before the step turned into the update
        in place (`after - before`, bit for bit) and freed. With `memo`, the memo is current
        (suspected after the op) and keeps the value's view for the snapshot."""
        for track in self._params:
            rec = self._last_step.get(track.name)
            if rec is None or rec.pending is None or rec.before is None or rec.after is None:
                continue
            before_view, grad_view = rec.pending
            before_view = before_view or view(rec.before)
            if grad_view is None and rec.grad is not None:
                grad_view = view(rec.grad) if rec.grad._version == rec.grad_version else None
            with shared_views(self._views if memo else ViewMemo()):  # rec.after is an alias
                after_view = view(track.tensor)  # of the live tensor: snapshots share this
            delta = torch.sub(rec.after, rec.before, out=rec.before)
            delta_view = view(delta)
            assert before_view is not None and after_view is not None and delta_view is not None
            rec.views = RecordViews(before_view, after_view, delta_view, grad_view)
            rec.before = rec.after = rec.grad = None
            rec.pending = None

    def _bare_step(self, moving: list[_ParamTrack], versions: list[int]) -> str:
        """The step without its record (`step_detail` off): no copies, the same summary."""
        was = [fmt.brief(t.tensor) for t in moving[:2]] if self.summary_values else []
        if isinstance(self.optimizer, ManualUpdate):
            self._manual_step({})  # checked and undone on failure, as with the record
        else:
            self.optimizer.step()
        self.step_count += 1
        self._last_step = {}
        gradless = self._moved_without_grad(versions)
        self._schedule()
        forget_norms()  # the step may write without moving version counters (fused)
        if not self.summary_values:  # the detectors check the moved values by their sums
            said = f"{fmt.plural(len(moving), 'parameter')} moved" if moving else ""
            return self._step_summary(said, gradless)
        prefetch([t.tensor for t in moving])  # every moved value: the summary reads them
        parts = [
            f"{t.name}: {b} → {fmt.brief(t.tensor)}" for b, t in zip(was, moving, strict=False)
        ]
        return self._step_summary(_first(parts, len(moving)), gradless)

    def _moved_without_grad(self, versions: list[int]) -> list[str]:
        """Parameters without a gradient that the step changed in place all the same."""
        return [
            t.name
            for t, v in zip(self._params, versions, strict=True)
            if t.tensor.grad is None and t.tensor._version != v
        ]

    def _schedule(self) -> None:
        if self.scenario.scheduler is not None and self.scenario.scheduler_every == "step":
            try:
                self.scenario.scheduler.step()
            except UserInterrupt:
                raise
            except BaseException as e:  # after optimizer.step(): the parameters have moved
                raise _ScenarioFailure(self._scheduler_error(e)) from None

    def _manual_step(self, before: dict[str, torch.Tensor]) -> dict[str, torch.Tensor | None]:
        """The scenario's step(), with the grads it used copied first (it may clear them).
        When it raises, or rebinds a parameter's global to a new tensor, every parameter,
        grad and binding is put back and the op fails with an explanation."""
        ns = self.scenario.namespace
        grads = {t.name: t.tensor.grad for t in self._params}
        used = {n: g.detach().clone() for n, g in grads.items() if g is not None}
        values = {
            t.name: before[t.name] if t.name in before else t.tensor.detach().clone()
            for t in self._params
        }
        failure: OpError | None = None
        try:
            self.optimizer.step()
        except Exception as e:
            failure = self._step_error(e)
        rebound = [t for t in self._params if t.name in ns and ns[t.name] is not t.tensor]
        if rebound and failure is None:
            failure = self._rebound_error(rebound[0].name, ns[rebound[0].name])
        if failure is not None:
            for t in rebound:
                ns[t.name] = t.tensor
            for t in self._params:  # through .data: the version counters stay as they were
                if not torch.equal(t.tensor.detach(), values[t.name]):
                    t.tensor.data.copy_(values[t.name])
                grad = grads[t.name]
                t.tensor.grad = grad
                if grad is not None and not torch.equal(grad, used[t.name]):
                    grad.data.copy_(used[t.name])
            raise _ScenarioFailure(failure)
        return dict(used)

    def _step_error(self, e: BaseException) -> OpError:
        file = str(self.scenario.path)
        line = None
        for frame, lineno in traceback.walk_tb(e.__traceback__):
            if frame.f_code.co_filename == file:
                line = lineno
        message = str(e).strip()
        where = self.scenario.location(line)
        hint = explain_step(type(e).__name__, message)
        return OpError(type(e).__name__, message, f"{where}: raised in step(). {hint}")

    def _rebound_error(self, name: str, new: Any) -> OpError:
        what = (
            "a tensor that is not a leaf (it has a grad_fn)"
            if isinstance(new, torch.Tensor) and not new.is_leaf
            else "a new tensor that does not require grad"
            if isinstance(new, torch.Tensor)
            else f"a {type(new).__name__}"
        )
        return OpError(
            "RebindError",
            f"step() rebound `{name}` to {what}",
            f"{self.scenario.location(None)}: `{name} = {name} - lr * {name}.grad` makes a new "
            f"tensor and binds the name to it: the parameter itself never changes, and the "
            f"new one is not a leaf that requires grad, so it never learns. Update it in place "
            f"instead: `{name} -= lr * {name}.grad` inside `with torch.no_grad():`. optdbg put "
            f"the old `{name}` back. The state is unchanged.",
        )

    def _scheduler_error(self, e: BaseException) -> OpError:
        return OpError(
            type_of(e),
            message_of(e),
            "optimizer.step() updated the parameters, then scheduler.step() raised: the "
            "parameters have moved, as in a plain loop, but the learning rate was not "
            f"scheduled. Fix the scheduler in {self.scenario.location(None)}, then reload (r).",
        )

    @staticmethod
    def _step_summary(said: str, gradless: list[str]) -> str:
        """What the step did: `said` how the parameters with a gradient moved ("" when none
        had one); `gradless` are those the step changed without one."""
        if gradless:
            more = f" (+{len(gradless) - 2} more)" if len(gradless) > 2 else ""
            changed = f"step changed {', '.join(gradless[:2])}{more} in place without a gradient"
            return f"{said}; {changed}" if said else changed
        return said or "no parameter has a gradient: nothing moved"

    def _protect_step_grads(self) -> None:
        """Copy the last step's grads before an op that would change them in place."""
        for track in self._params:
            rec = self._last_step.get(track.name)
            if rec is not None and rec.grad is not None and rec.grad is track.tensor.grad:
                rec.grad = rec.grad.detach().clone()
                rec.grad_version = rec.grad._version

    # zero_grad -----------------------------------------------------------

    def _zero_grad(self) -> str:
        if not self._zero_sets_none:
            self._protect_step_grads()
        self.optimizer.zero_grad()
        for track in self._params:
            track.accumulated = 0
        none = all(t.tensor.grad is None for t in self._params)
        return "grads cleared (set to None)" if none else "grads set to zero"

    # evaluate ------------------------------------------------------------

    def _evaluate(self) -> str:
        evaluation = self.scenario.evaluation
        if evaluation is None:
            raise UsageError(
                "the scenario defines no evaluation: add `test_data` (batches for model and "
                "loss_fn) or def evaluate(): returning a number or a dict of numbers"
            )
        generators = self.history.generators + [
            g
            for g in find_generators({}, self.scenario.evaluation_data)
            if g not in self.history.generators
        ]
        rng = RngState.capture(generators)
        modes = _module_modes(self.scenario.namespace)
        try:
            for module, _ in modes:
                module.train(False)
            with torch.no_grad():
                result = evaluation()
        except (Exception, SystemExit) as e:
            raise _ScenarioFailure(self._forward_error(e, "evaluating")) from None
        finally:
            for module, training in modes:
                module.training = training
            rng.restore(generators)
        values = _named_numbers(result)
        if values is None:
            raise _ScenarioFailure(
                OpError(
                    "TypeError",
                    f"evaluate() returned a {type(result).__name__}",
                    f"{self.scenario.location(None)}: evaluate() must return a number or a "
                    "dict of named numbers, e.g. {'loss': 0.31, 'accuracy': 0.9}.",
                )
            )
        since = [
            v
            for v, at in zip(self.loss_history, self.loss_steps, strict=True)
            if not self.evaluations or at > self.evaluations[-1].index
        ]
        train = math.fsum(since) / len(since) if since else self.loss_value
        self.evaluations.append(Evaluation(len(self.events), len(self.loss_history), values, train))
        self._evaluation = values
        return "eval " + ", ".join(f"{k} = {fmt.num(v)}" for k, v in values.items())

    def evaluation_series(self) -> tuple[tuple[float, float | None], ...]:
        """(evaluation loss, mean training loss since the previous one) per evaluation."""
        return tuple((e.loss, e.train_loss) for e in self.evaluations if e.loss is not None)

    # observing -----------------------------------------------------------

    def _point(self) -> tuple[float, ...]:
        return tuple(x for t in self._params for x in t.tensor.detach().reshape(-1).tolist())

    def trajectory(self) -> tuple[tuple[float, ...], ...]:
        """Every parameter's values (flattened, in order) at the start and after each step
        so far; empty for models of more than PATH_LIMIT elements."""
        return tuple(self._path[: self.step_count + 1])

    def snapshot(self, states: Collection[str] | None = None) -> Snapshot:
        """A detached copy of everything the session holds now; with `states`, the optimizer
        state of those parameters only (a panel shows one parameter's: each state tensor of
        the others would be summarized at every op for nothing)."""
        with shared_views(self._views):
            return self._snapshot(states)

    def param_views(self) -> list[tuple[str, TensorView, TensorView | None]]:
        """Each parameter's name, value and grad, detached (what a `--json` record holds;
        cheaper than a snapshot: no optimizer state, no last update)."""
        with shared_views(self._views):
            out = []
            for t in self._params:
                value = view(t.tensor)
                assert value is not None
                out.append((t.name, value, view(t.tensor.grad)))
            return out

    def _snapshot(self, states: Collection[str] | None) -> Snapshot:
        return Snapshot(
            scenario=self.scenario.name,
            title=self.scenario.title,
            op_count=len(self.events),
            step_count=self.step_count,
            iteration=self.forward_count,
            epoch=self.epoch,
            batch=self.batch,
            batches_per_epoch=batch_count(self.scenario.data),
            has_data=self.scenario.data is not None,
            loss=self.loss_value,
            loss_history=tuple(self.loss_history),
            loss_steps=tuple(self.loss_steps),
            next_op=self.next_op,
            optimizer=self.optimizer_name,
            evals=tuple((e.forwards, e.values) for e in self.evaluations),
            groups=tuple(_hyper(g) for g in self.optimizer.param_groups),
            params=tuple(
                self._param_snapshot(t, states is None or t.name in states) for t in self._params
            ),
            has_graph=self.loss is not None,
        )

    def _param_snapshot(self, track: _ParamTrack, state: bool = True) -> ParamSnapshot:
        p = track.tensor
        value = view(p)
        assert value is not None
        rec = self._last_step.get(track.name)
        return ParamSnapshot(
            name=track.name,
            group=track.group,
            value=value,
            grad=view(p.grad),
            accumulated=track.accumulated if p.grad is not None else 0,
            last_update=_last_update(rec, self._delta),
            state={k: plain(v) for k, v in self.optimizer.state.get(p, {}).items()}
            if state
            else {},
            requires_grad=p.requires_grad,
        )

    def findings(self) -> list[Diagnosis]:
        """Every warning so far grouped by code, with what it means and how to fix it (plus,
        before the first op, what the detectors found at load)."""
        found = diagnose(self.events)
        if not self.events and self.detectors.pending:
            found = diagnose([Event(-1, "load", "", None, warnings=self.detectors.pending)])
        return found

    def values_text(self, name: str, limit: int = 2000) -> str:
        """A parameter's value and grad printed in full (edges only past `limit` elements)."""
        track = next((t for t in self._params if t.name == name), None)
        if track is None:
            return ""
        parts = []
        for label, t in (("value", track.tensor), ("grad", track.tensor.grad)):
            if t is None:
                parts.append(f"{label}: None")
                continue
            text = np.array2string(_printable(t), threshold=limit, precision=6, max_line_width=100)
            parts.append(f"{label}:\n{text}")
        return "\n".join(parts)

    def _delta(self, rec: StepRecord) -> torch.Tensor | None:
        """after - before of a step record, computed once: every snapshot (each op) and the
        update detail show it. Keyed by the record itself, so a new step or a history
        restore (which replaces the records) simply misses; only current records stay."""
        if rec.before is None or rec.after is None:
            return None
        hit = self._deltas.get(id(rec))
        if hit is None or hit[0] is not rec:
            if len(self._deltas) > 2 * len(self._last_step):  # amortized: linear per snapshot
                current = {id(r) for r in self._last_step.values()}
                self._deltas = {k: v for k, v in self._deltas.items() if k in current}
            hit = (rec, rec.after - rec.before)
            self._deltas[id(rec)] = hit
        return hit[1]

    def update_detail(self, name: str) -> UpdateDetail | None:
        """The last step's numbers for one parameter, for showing the update rule."""
        with shared_views(self._views):
            return self._update_detail(name)

    def _update_detail(self, name: str) -> UpdateDetail | None:
        rec = self._last_step.get(name)
        track = next((t for t in self._params if t.name == name), None)
        if rec is None or track is None:
            return None
        before: TensorView | None
        after: TensorView | None
        delta: TensorView | None
        grad: TensorView | None
        if rec.views is not None:
            before, after, delta = rec.views.before, rec.views.after, rec.views.delta
            grad = rec.views.grad
        else:
            # the copy after the step is the live value's twin until that moves (one compare,
            # and the view the snapshot took of the value, instead of a summary)
            live = track.tensor
            twin = rec.after is not None and same_bits(rec.after, live)
            after = view(live if twin else rec.after)
            before, delta = view(rec.before), view(self._delta(rec))
            ok = rec.grad is not None and rec.grad._version == rec.grad_version
            grad = view(rec.grad) if ok else None
        assert before is not None and after is not None and delta is not None
        source, rule = self._manual_rule(name)
        return UpdateDetail(
            name=name,
            optimizer=self.optimizer_name,
            hyper=rec.hyper,
            before=before,
            grad=grad,
            after=after,
            delta=delta,
            state_before={k: plain(v) for k, v in rec.state_before.items()},
            state_after={
                k: plain(v) for k, v in self.optimizer.state.get(track.tensor, {}).items()
            },
            source=source,
            rule=rule,
        )

    def _manual_rule(
        self, name: str
    ) -> tuple[tuple[str, ...], tuple[str, str, float | None] | None]:
        """The manual form: step()'s numbered source lines and this parameter's plain rule."""
        src = self.scenario.manual
        if src is None:
            return (), None
        width = len(str(src.first_line + len(src.lines)))
        numbered = tuple(
            f"{src.first_line + i:>{width}} | {line}" for i, line in enumerate(src.lines)
        )
        found = src.rules.get(name) or src.rules.get("*")
        if found is None:
            return numbered, None
        value = coefficient_value(found.coefficient, self.scenario.namespace)
        return numbered, (found.text, found.coefficient, value)

    def graph(self) -> Graph | None:
        """The extracted autograd graph of the current loss (cached per forward; after a
        backward recorded with `capture_graph` on, it carries `flow` and `steps`). None
        when extraction failed for this loss (`graph_error` says why; not tried again)."""
        if self.loss is None or self._failed_forward == self.forward_count:
            return None
        if self._graph_cache is None or self._graph_cache[0] != self.forward_count:
            self._extract(None)
        return self._graph_cache[1] if self._graph_cache is not None else None

    def backward_steps(self) -> tuple[Event, tuple[BackwardStep, ...]]:
        """Backward in slow motion.

        Performs the `backward` op, which is exactly one normal `loss.backward()` (so every
        `.grad` ends bit for bit as after `backward()`), with autograd Node hooks recording
        each node it runs through, in autograd's execution order, whatever `capture_graph`
        says. Returns the op's Event (recorded like any backward) and the steps, for the UI
        to replay one node at a time. Each `BackwardStep` has the node id, the gradient
        arriving at the node (`grad_in`), the local derivative (`derivative` in words,
        `local` as numbers for elementwise ops), the gradient sent to each input
        (`outputs`: (input node id, gradient) per slot) and, for a leaf, its `.grad` before
        and after the deposit. The steps are empty when PyTorch refused the backward (the
        Event says why). Afterwards `graph().steps` and `graph().flow` hold the same data.
        """
        self._trace_once = True
        try:
            event = self.backward()
        finally:
            self._trace_once = False
        graph = self._graph_cache[1] if self._graph_cache is not None else None
        steps = graph.steps if event.ok and graph is not None else ()
        return event, steps

    def _module_maps(self) -> tuple[dict[int, str], dict[int, str]]:
        """The graph's module names (read once); none when the scenario's modules cannot
        be read (a failure of the graph watcher, never of the op)."""
        if self._modules is None:
            try:
                self._modules = module_names(self.scenario.namespace)
            except Exception as e:  # observing must never break an op
                self._graph_failed(f"the modules could not be read, nodes show none: {failure(e)}")
                self._modules = ({}, {})
        return self._modules

    def _extract(self, capture: ForwardCapture | None) -> None:
        assert self.loss is not None
        ns = self.scenario.namespace
        leaves: list[tuple[torch.Tensor, TensorView]] = []
        try:
            names = {
                fmt.name(k): v
                for k, v in ns.items()
                if isinstance(v, torch.Tensor) and k[:2] != "__"
            }
            names.update(grad_tensors(ns))
            names.update(self.scenario.params)
            graph, fns = extract_nodes(
                self.loss,
                names,
                capture=capture,
                owners=self._module_maps()[1],
                leaf_views=leaves,
                known=self._views.checked,
            )
        except Exception as e:  # observing must never break an op
            self.graph_error = self._graph_failed(f"extraction failed: {failure(e)}")
            self._graph_cache, self._graph_fns = None, []
            self._failed_forward = self.forward_count
            return
        self.graph_error = None
        self._graph_cache = (self.forward_count, graph)
        self._graph_fns = fns
        if self._performing:  # kept once the op's code has all run (see _perform)
            self._fresh_views += [(t, t._version, v, False) for t, v in leaves]
        else:
            for t, v in leaves:
                self._views.put(t, v)

    def _flow_recorder(self) -> FlowRecorder | None:
        """Hooks for the coming backward, when flow is watched; extracts the graph first,
        while its saved tensors still exist."""
        if not (self.capture_graph or self._trace_once) or self.graph() is None:
            return None
        return FlowRecorder(self._graph_fns) if self._graph_fns else None

    def _record_flow(self, recorder: FlowRecorder) -> None:
        if self._graph_cache is None:
            return
        key, graph = self._graph_cache
        try:
            self._graph_cache = (key, graph_with_flow(graph, recorder))
            for grad, seen in recorder.grad_views:  # the snapshot shows them: not again
                self._views.put(grad, seen)
        except Exception as e:  # observing must never break an op
            self.graph_error = self._graph_failed(
                f"recording the gradient flow failed: {failure(e)}"
            )

    def _graph_failed(self, what: str) -> str:
        """Note a failure of the graph watcher for the running op's event; returns it."""
        text = f"graph: {what}"
        self._failures.append(text)
        return text


_NO_BATCH = object()
"""No batch was drawn (yet) for this forward."""


class _ScenarioFailure(Exception):
    def __init__(self, error: OpError) -> None:
        super().__init__(error.message)
        self.error = error


def _printable(t: torch.Tensor) -> np.ndarray[Any, Any]:
    """A NumPy array of a tensor's values for printing: a view when NumPy has the dtype (no
    copy of a 400 MB parameter), complex kept complex (`.double()` dropped the imaginary
    part), sparse made dense, and dtypes NumPy lacks (bfloat16) widened to float32."""
    x = t.detach().cpu()
    if x.layout != torch.strided:
        x = x.to_dense()
    x = x.resolve_conj().resolve_neg()
    try:
        return x.numpy()
    except TypeError:
        return (x.to(torch.complex64) if x.is_complex() else x.float()).numpy()


def _last_update(
    rec: StepRecord | None, delta: Callable[[StepRecord], torch.Tensor | None]
) -> TensorView | None:
    """A snapshot's last update of one parameter: its record's summary, else the view of
    its delta (computed once per record by `delta`)."""
    if rec is None:
        return None
    if rec.views is not None:
        return rec.views.delta
    return view(delta(rec))


def _clone(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.detach().clone()


def _copy_state(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v.detach().clone() if isinstance(v, torch.Tensor) else v for k, v in state.items()}


def _hyper(group: dict[str, Any]) -> dict[str, Any]:
    return {k: plain(v) for k, v in group.items() if k != "params"}


_OWN = __name__.rsplit(".", 1)[0] + "."
"""This package's modules (their step hooks, the pitfall probes', write nothing)."""


def _torch_own(optimizer: torch.optim.Optimizer, method: str) -> bool:
    """Whether the optimizer's `method` is torch.optim's own code (not a subclass's)."""
    owner = next(c for c in type(optimizer).__mro__ if method in vars(c))
    return owner.__module__.startswith("torch.")


def _first(parts: list[str], n: int) -> str:
    """What the first of `n` things did, and how many more there are."""
    return "; ".join(parts) + (f" (+{n - len(parts)} more)" if n > len(parts) else "")


def _version(t: torch.Tensor | None) -> int | None:
    return None if t is None else t._version


def _module_modes(ns: dict[str, Any]) -> list[tuple[torch.nn.Module, bool]]:
    """Every module of the scenario's globals (and their submodules) with its training flag."""
    seen: dict[int, tuple[torch.nn.Module, bool]] = {}
    for key, value in ns.items():
        if key.startswith("__") or not isinstance(value, torch.nn.Module):
            continue
        for module in value.modules():
            seen.setdefault(id(module), (module, module.training))
    return list(seen.values())


def _named_numbers(result: Any) -> dict[str, float] | None:
    """An evaluation's result as named floats: a number is the "loss"; None if not numbers."""
    items = result.items() if isinstance(result, dict) else [("loss", result)]
    values = {}
    for key, value in items:
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        values[str(key)] = float(value)
    return values or None


def _length(data: Any) -> int | None:
    try:
        return len(data) if data is not None else None
    except TypeError:
        return None


def _zero_grad_sets_none(optimizer: torch.optim.Optimizer) -> bool:
    try:
        param = inspect.signature(optimizer.zero_grad).parameters.get("set_to_none")
    except (TypeError, ValueError):
        return False
    return param is not None and param.default is True
