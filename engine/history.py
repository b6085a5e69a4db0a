"""Time travel for a driver (the Session): undo, redo and goto, by checkpoints plus
deterministic replay.

Every op is logged (its Event, and the arguments of a hyperparameter edit). A checkpoint is
a detached copy of everything an op can change: the values and grads of the optimizer's
parameters and of every other leaf tensor that requires grad, module buffers, optimizer and
scheduler state, the param groups' hyperparameters, the random number generators (torch
CPU and CUDA, Python `random`, NumPy's global state, and every generator the scenario or its
DataLoader holds), the data position, scalar globals and plain containers of the scenario,
the driver's own state (counters, accumulation bookkeeping, last step records: whatever its
`checkpoint()` returns, see `engine.loop.Checkpointable`) and the state of the observers
given (`history_state()` / `restore_history_state(state)`: the pitfall detectors).

A graph cannot be copied, so checkpoints never hold one. They are taken right *before a
forward* (or at the start, where there is no loss): the state after op k is rebuilt by
restoring a checkpoint taken at or before the last forward up to k and replaying the logged
ops from there through the driver's own ops (`perform_op`). Replay performs the same PyTorch calls
on the same values, batches and random streams, so it reproduces every value bit for bit,
the loss and its graph included (each replayed event is compared with the logged one, and a
difference is reported as a `replay-diverged` warning).

The data position is not copied either: a checkpoint keeps the random state at the moment
the current epoch's iterator was created and the number of batches drawn from it; restoring
creates a new iterator from that state and skips that many batches.

Memory: checkpoints share every tensor they can (step records, unchanged buffers and frozen
tensors, identical random states) and live within a byte budget (`history_mb`, default
256 MB, from the History argument or the scenario's `optdbg_config`). When a new checkpoint
passes the budget, the one whose removal costs least is evicted: the gap it leaves, measured
in ops, relative to the square root of its distance from the current position, so that
checkpoints stay dense near where the user is and thin out towards the start. The start
checkpoint is never evicted, so undo always reaches the start. A checkpoint is taken before
a forward only when the work done since the previous one is at least ten times what the last
checkpoint cost to take (about 10% overhead at most), or every `every` forwards if set.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import random
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ScenarioError, message_of, source_line, type_of
from .events import LOOP_OPS, Event, Finding, OpError
from .hyper import assign
from .loop import Checkpointable, LoopCheckpoint, Stateful
from .scenario import grad_tensors

DEFAULT_HISTORY_MB = 256.0
MAX_CHECKPOINTS = 4096
OVERHEAD = 0.04
"""Checkpoints are spaced so that taking them costs at most this fraction of the op time."""
_FIXED_BYTES = 2048
"""Accounting for the small Python objects of a checkpoint (counters, dicts)."""


def _config_line(path: Any) -> int | None:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    return next((i for i, line in enumerate(lines, 1) if "optdbg_config" in line), None)


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


# ----------------------------------------------------------------- random number generators


def _gen_state(gen: Any) -> Any:
    if isinstance(gen, torch.Generator):
        return gen.get_state()
    if isinstance(gen, np.random.Generator):
        return copy.deepcopy(gen.bit_generator.state)
    if isinstance(gen, np.random.RandomState):
        return gen.get_state()
    if isinstance(gen, random.Random):
        return gen.getstate()
    raise TypeError(f"not a random number generator: {type(gen).__name__}")


def _set_gen_state(gen: Any, state: Any) -> None:
    if isinstance(gen, torch.Generator):
        gen.set_state(state)
    elif isinstance(gen, np.random.Generator):
        gen.bit_generator.state = copy.deepcopy(state)
    elif isinstance(gen, np.random.RandomState):
        gen.set_state(state)
    elif isinstance(gen, random.Random):
        gen.setstate(state)


def _cuda_ready() -> bool:
    return bool(torch.cuda.is_available() and torch.cuda.is_initialized())


@dataclass(frozen=True)
class RngState:
    """The state of every random number generator a scenario can draw from."""

    torch_cpu: torch.Tensor
    cuda: tuple[torch.Tensor, ...] | None
    """Per-device CUDA states; None when CUDA was not initialized (then its generators
    still hold their seed, `seed`, which restoring applies again)."""
    seed: int
    python: Any
    numpy: Any
    generators: tuple[Any, ...]

    @classmethod
    def capture(cls, generators: list[Any]) -> RngState:
        return cls(
            torch_cpu=torch.get_rng_state(),
            cuda=tuple(torch.cuda.get_rng_state_all()) if _cuda_ready() else None,
            seed=torch.initial_seed(),
            python=random.getstate(),
            numpy=np.random.get_state(),
            generators=tuple(_gen_state(g) for g in generators),
        )

    def restore(self, generators: list[Any]) -> None:
        torch.set_rng_state(self.torch_cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(list(self.cuda))
        elif _cuda_ready():
            torch.cuda.manual_seed_all(self.seed)
        random.setstate(self.python)
        np.random.set_state(self.numpy)
        for gen, state in zip(generators, self.generators, strict=True):
            _set_gen_state(gen, state)

    def same(self, other: RngState) -> bool:
        return (
            _same_bits(self.torch_cpu, other.torch_cpu)
            and self.python == other.python
            and self.seed == other.seed
            and _same_tree(self.numpy, other.numpy)
            and _same_tree(self.cuda, other.cuda)
            and _same_tree(self.generators, other.generators)
        )

    def nbytes(self) -> int:
        tensors = [self.torch_cpu, *(self.cuda or ())]
        return sum(_nbytes(t) for t in tensors) + 8 * 1300 + 5200 * len(self.generators)


def _same_tree(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and _same_bits(a, b)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and a.tobytes() == b.tobytes()
        )
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(_same_tree(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_tree(a[k], b[k]) for k in a)
    return bool(type(a) is type(b) and a == b)


def find_generators(namespace: dict[str, Any], data: Any) -> list[Any]:
    """The random number generators a scenario holds: its globals and its data's."""
    found: dict[int, Any] = {}
    kinds = (torch.Generator, np.random.Generator, np.random.RandomState, random.Random)
    for key, value in namespace.items():
        if not key.startswith("__") and isinstance(value, kinds):
            found.setdefault(id(value), value)
    holders = [data]
    sampler = getattr(data, "sampler", None)
    batch_sampler = getattr(data, "batch_sampler", None)
    holders += [sampler, batch_sampler, getattr(batch_sampler, "sampler", None)]
    for holder in holders:
        gen = getattr(holder, "generator", None) if holder is not None else None
        if isinstance(gen, kinds):
            found.setdefault(id(gen), gen)
    return list(found.values())


# ----------------------------------------------------------------- tensors


def _nbytes(t: torch.Tensor) -> int:
    return t.nelement() * t.element_size()


_INTS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def _bits(t: torch.Tensor) -> torch.Tensor:
    """The raw bits as integers of the same width (NaNs with equal bits compare equal)."""
    flat = t.detach().reshape(-1)
    return flat.view(_INTS.get(flat.element_size(), torch.uint8))


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.layout != torch.strided or b.layout != torch.strided:
        return False  # sparse: never shared
    return (
        a.shape == b.shape
        and a.dtype == b.dtype
        and a.device == b.device
        and a.stride() == b.stride()
        and bool(torch.equal(_bits(a), _bits(b)))
    )


def _clone(t: torch.Tensor) -> torch.Tensor:
    return t.detach().clone()


def _keep(live: torch.Tensor, previous: torch.Tensor | None) -> torch.Tensor:
    """A detached copy of `live`, sharing `previous` when it holds the same bits."""
    if previous is not None and _same_bits(live, previous):
        return previous
    return _clone(live)


def _clone_tree(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return _clone(value)
    if isinstance(value, dict):
        return {k: _clone_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_clone_tree(v) for v in value)
    return value


def tensors_in(value: Any) -> Iterator[torch.Tensor]:
    """Every tensor in (nested) dicts, lists and tuples."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from tensors_in(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from tensors_in(v)


_SCALARS = (bool, int, float, complex, str, bytes, type(None))
_CONTAINERS = (list, dict, set, deque)
_MAX_ITEMS = 100_000
"""A scenario's container with more plain items than this is not copied into checkpoints."""


def _plain_data(value: Any, budget: list[int]) -> bool:
    """Whether `value` holds only numbers, strings and containers of them (within budget)."""
    budget[0] -= 1
    if budget[0] < 0:
        return False
    if isinstance(value, _SCALARS):
        return True
    if isinstance(value, dict):
        return all(_plain_data(k, budget) and _plain_data(v, budget) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset | deque):
        return all(_plain_data(v, budget) for v in value)
    return False


def scenario_containers(namespace: dict[str, Any]) -> dict[str, Any]:
    """Copies of the scenario's own lists, dicts, sets and deques of plain data (such as a
    `val_losses` list that forward appends to), by global name."""
    return {
        k: copy.deepcopy(v)
        for k, v in namespace.items()
        if not k.startswith("__") and type(v) in _CONTAINERS and _plain_data(v, [_MAX_ITEMS])
    }


def restore_containers(namespace: dict[str, Any], saved: dict[str, Any]) -> None:
    """Put the saved contents back into the same objects (aliases see them too)."""
    for key, value in saved.items():
        live: Any = namespace.get(key)
        fresh = copy.deepcopy(value)
        if type(live) is not type(fresh):
            namespace[key] = fresh
        elif isinstance(live, dict | set):
            live.clear()
            live.update(fresh)
        else:  # list or deque
            live.clear()
            live.extend(fresh)


# ----------------------------------------------------------------- checkpoints


@dataclass
class Checkpoint:
    """The loop's state after `position` ops (before op `position`, a forward)."""

    position: int
    values: list[torch.Tensor]
    grads: list[torch.Tensor | None]
    buffers: list[torch.Tensor]
    opt_state: list[dict[str, Any] | None]
    groups: list[dict[str, Any]]
    scheduler: dict[str, Any] | None
    rng: RngState
    data: tuple[RngState, int] | None
    epoch_rng: RngState | None
    loop: LoopCheckpoint
    """The driver's own state (its `checkpoint()`)."""
    observers: list[Any]
    """Each observer's `history_state()`."""
    scalars: dict[str, Any]
    containers: dict[str, Any]
    """Copies of the scenario's lists, dicts and sets of plain data (see scenario_containers)."""
    optimizer_attrs: dict[str, Any]
    """Plain attributes of the optimizer (e.g. `_opt_called`, set by an LR scheduler)."""
    held: list[Any] = field(default_factory=list)
    """Everything counted against the budget: tensors and RngStates (shared ones once)."""


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
        self.observers = tuple(observers)
        scenario = loop.scenario
        mb = history_mb if history_mb is not None else scenario.config.get("history_mb")
        if mb is None:
            mb = DEFAULT_HISTORY_MB
        if isinstance(mb, bool) or not isinstance(mb, int | float) or not mb >= 0:
            if history_mb is not None:
                raise ValueError(f"history_mb must be a number of megabytes >= 0, not {mb!r}")
            raise ScenarioError(
                str(scenario.path),
                _config_line(scenario.path),
                f'optdbg_config["history_mb"] is {mb!r}',
                "the megabytes undo history may keep: a number >= 0 (default 256)",
                'e.g. optdbg_config = {"history_mb": 512}, or remove the key',
                source_line(str(scenario.path), _config_line(scenario.path)),
            )
        self.budget = int(mb * 1024 * 1024)
        """Bytes the checkpoints may hold (the start checkpoint is kept even past it)."""
        self.every = every
        """Take a checkpoint every this many forwards (None: by cost, see OVERHEAD)."""
        self.entries: list[_Entry] = []
        self.checkpoints: list[Checkpoint] = []
        self.replaying = False
        self.divergence: str | None = None
        """How the last replay differed from the log (None: bit for bit the same)."""
        self.unavailable: str | None = None
        self.error: str | None = None
        """Why the last checkpoint was skipped (an op never fails because of history)."""
        self.generators = find_generators(scenario.namespace, scenario.data)
        self.epoch_rng: RngState | None = None
        self._pending: Checkpoint | None = None
        self._refs: dict[int, tuple[int, int]] = {}
        self.nbytes = 0
        """Bytes held by the checkpoints now."""
        self.peak_nbytes = 0
        self._copy_seconds = 0.0
        self._estimate = 0
        self._opt_params = [t.tensor for t in loop.tracks]
        self._tensors, self._buffers = self._find_tensors()
        self._structure = _structure(loop.optimizer)
        if isinstance(scenario.data, Iterator):
            self.unavailable = (
                "`data` is a one-shot iterator (e.g. a generator), so its batches cannot be "
                "drawn again; make it re-iterable (a list or a DataLoader) to use undo"
            )
            return
        start = time.perf_counter()
        try:
            self._add(self._capture(0))
        except Exception as e:  # something the scenario holds cannot be copied: run without undo
            self.unavailable = (
                f"the scenario's state cannot be copied ({type_of(e)}: {message_of(e)}), so "
                "undo, redo and goto are off; every other op works as usual"
            )
            self.checkpoints = []
            return
        self._copy_seconds = time.perf_counter() - start

    def _find_tensors(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        ns = self.loop.scenario.namespace
        tensors = {id(p): p for p in self._opt_params}
        for _, t in grad_tensors(ns):
            tensors.setdefault(id(t), t)
        buffers: dict[int, torch.Tensor] = {}
        for key, value in ns.items():
            if key.startswith("__") or not isinstance(value, torch.nn.Module):
                continue
            for p in value.parameters():
                tensors.setdefault(id(p), p)
            for b in value.buffers():
                buffers.setdefault(id(b), b)
        return list(tensors.values()), [b for i, b in buffers.items() if i not in tensors]

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
            try:
                self._maybe_checkpoint()
            except Exception as e:  # history must never break an op: skip this checkpoint
                self.error = f"checkpoint skipped: {type(e).__name__}: {e}"
                self._pending = None

    def after_op(self, event: Event, args: tuple[Any, ...] | None = None) -> None:
        """Called by the driver once the op's event is in its `events`; `args` are what a
        replay needs besides the op's name (a hyperparameter edit's group, key and value)."""
        if self.replaying:
            return
        if self.unavailable is None and _structure(self.loop.optimizer) != self._structure:
            self.unavailable = (
                f"op {event.index} ({event.op}) changed the optimizer's param groups (e.g. "
                "add_param_group), so earlier states cannot be restored: undo, redo and goto "
                "are off from here on; every other op works as usual"
            )
            self.checkpoints, self.entries, self._pending = [], [], None
            return
        self.entries.append(_Entry(event, args))
        pending, self._pending = self._pending, None
        if pending is not None and not event.ok and self.loop.loss is not None:
            self._remove(pending)  # replay from it would need the loss it does not hold

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
            self._remove(ck)
        here = self._at(pos)
        if here is not None and here.position > 0 and not keep_here:
            self._remove(here)

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
        start_bytes = self._start_bytes()
        if self._estimate and start_bytes + self._estimate > self.budget:
            return  # a checkpoint would not fit next to the start one
        started = time.perf_counter()
        ck = self._capture(pos)
        if self._make_room(ck):
            self._add(ck)
            self._pending = ck
        self._copy_seconds = time.perf_counter() - started

    def _start_bytes(self) -> int:
        return sum(_held_bytes(x) for x in self.checkpoints[0].held) if self.checkpoints else 0

    # ------------------------------------------------------------- budget

    def _add(self, ck: Checkpoint) -> None:
        for obj in ck.held:
            count, size = self._refs.get(id(obj), (0, _held_bytes(obj)))
            if count == 0:
                self.nbytes += size
            self._refs[id(obj)] = (count + 1, size)
        self.nbytes += _FIXED_BYTES
        self.checkpoints.append(ck)
        self.checkpoints.sort(key=lambda c: c.position)
        self.peak_nbytes = max(self.peak_nbytes, self.nbytes)

    def _remove(self, ck: Checkpoint) -> None:
        if ck not in self.checkpoints:
            return
        self.checkpoints.remove(ck)
        for obj in ck.held:
            count, size = self._refs[id(obj)]
            if count == 1:
                del self._refs[id(obj)]
                self.nbytes -= size
            else:
                self._refs[id(obj)] = (count - 1, size)
        self.nbytes -= _FIXED_BYTES

    def _incoming(self, ck: Checkpoint) -> int:
        """Bytes that adding `ck` would add (what it shares with others is counted already)."""
        seen: set[int] = set()
        total = _FIXED_BYTES
        for obj in ck.held:
            if id(obj) not in self._refs and id(obj) not in seen:
                seen.add(id(obj))
                total += _held_bytes(obj)
        return total

    def _make_room(self, new: Checkpoint) -> bool:
        """Evict checkpoints until `new` fits in the budget; False when it cannot fit.

        The start checkpoint is never evicted; of the others, the one whose removal leaves
        the smallest gap (in ops) relative to the square root of its distance from the
        current position goes first, so checkpoints stay dense near the current position.
        """
        pos = new.position
        while True:
            need = self._incoming(new)
            self._estimate = need
            if self.nbytes + need <= self.budget and len(self.checkpoints) < MAX_CHECKPOINTS:
                return True
            cks = sorted([*self.checkpoints, new], key=lambda c: c.position)
            end = max(len(self.entries), pos)
            best: tuple[float, Checkpoint] | None = None
            for i in range(1, len(cks)):
                if cks[i] is new:
                    continue
                after = cks[i + 1].position if i + 1 < len(cks) else end
                gap = after - cks[i - 1].position
                score = gap / math.sqrt(abs(pos - cks[i].position) + 1)
                if best is None or score < best[0]:
                    best = (score, cks[i])
            if best is None:
                return False
            self._remove(best[1])

    # ------------------------------------------------------------- capture and restore

    def _capture(self, position: int) -> Checkpoint:
        loop = self.loop
        prev = self.checkpoints[-1] if self.checkpoints else None
        moved = loop.moved
        names = {id(t.tensor): t.name for t in loop.tracks}
        values: list[torch.Tensor] = []
        grads: list[torch.Tensor | None] = []
        for i, t in enumerate(self._tensors):
            step = moved.get(names.get(id(t), ""))
            optimized = i < len(self._opt_params)
            if step is not None and _same_bits(step[1], t):
                values.append(step[1])  # the last step's copy of the value after it
            else:
                values.append(_keep(t, None if optimized or prev is None else prev.values[i]))
            g = t.grad
            if g is None:
                grads.append(None)
            else:
                old = None if optimized or prev is None else prev.grads[i]
                grads.append(_keep(g, old))
        buffers = [
            _keep(b, prev.buffers[i] if prev is not None else None)
            for i, b in enumerate(self._buffers)
        ]
        opt = loop.optimizer
        opt_state = [
            _clone_tree(opt.state[p]) if p in opt.state else None for p in self._opt_params
        ]
        groups = [
            {k: _clone_tree(v) for k, v in g.items() if k != "params"} for g in opt.param_groups
        ]
        scheduler = loop.scenario.scheduler
        sched = (
            copy.deepcopy(scheduler.state_dict(), self._memo())
            if scheduler is not None and hasattr(scheduler, "state_dict")
            else None
        )
        rng = RngState.capture(self.generators)
        if prev is not None and rng.same(prev.rng):
            rng = prev.rng
        own = loop.checkpoint()
        data = None
        if own.drawn is not None and self.epoch_rng is not None:
            data = (self.epoch_rng, own.drawn)
        ns = loop.scenario.namespace
        scalars = {
            k: v for k, v in ns.items() if not k.startswith("__") and isinstance(v, _SCALARS)
        }
        ck = Checkpoint(
            position=position,
            values=values,
            grads=grads,
            buffers=buffers,
            opt_state=opt_state,
            groups=groups,
            scheduler=sched,
            rng=rng,
            data=data,
            epoch_rng=self.epoch_rng,
            loop=own,
            observers=[o.history_state() for o in self.observers],
            scalars=scalars,
            containers=scenario_containers(ns),
            optimizer_attrs={k: v for k, v in vars(opt).items() if _plain_attr(k, v)},
        )
        held: dict[int, Any] = {}
        for obj in (
            *own.tensors,
            *values,
            *(g for g in grads if g is not None),
            *buffers,
            *tensors_in(opt_state),
            *tensors_in(groups),
            *tensors_in(sched),
            rng,
            *((data[0],) if data is not None else ()),
        ):
            held.setdefault(id(obj), obj)
        live = set(self._memo()) | {id(t) for t in own.tensors}
        python = _PythonState(live, ck.observers, ck.scalars, ck.containers, own.state)
        ck.held = [*held.values(), python]
        return ck

    def _memo(self) -> dict[int, Any]:
        """deepcopy memo that keeps live objects shared, not copied: the driver, the optimizer,
        the scenario and whatever its globals hold (tensors, modules, data, functions)."""
        loop = self.loop
        ns = loop.scenario.namespace
        shared: list[Any] = [loop, loop.optimizer, loop.scenario, ns]
        shared += [*self._tensors, *self._buffers, *self.generators]
        shared += [v for k, v in ns.items() if not k.startswith("__")]
        memo = {id(obj): obj for obj in shared}
        memo[id(memo)] = shared  # deepcopy's keep-alive slot
        return memo

    def _restore(self, ck: Checkpoint) -> None:
        loop = self.loop
        with torch.no_grad():
            for t, v in zip(self._tensors, ck.values, strict=True):
                t.copy_(v)
            for b, v in zip(self._buffers, ck.buffers, strict=True):
                b.copy_(v)
        for t, g in zip(self._tensors, ck.grads, strict=True):
            t.grad = None if g is None else _clone(g)
        opt = loop.optimizer
        for p, state in zip(self._opt_params, ck.opt_state, strict=True):
            if state is None:
                opt.state.pop(p, None)
            else:
                opt.state[p] = _clone_tree(state)
        for group, saved in zip(opt.param_groups, ck.groups, strict=True):
            for key in [k for k in group if k != "params" and k not in saved]:
                del group[key]
            for key, value in saved.items():
                group[key] = _clone_tree(value)
        scheduler = loop.scenario.scheduler
        if ck.scheduler is not None and scheduler is not None:
            scheduler.load_state_dict(copy.deepcopy(ck.scheduler, self._memo()))
        loop.restore(ck.loop, self._batches(ck))
        self.epoch_rng = ck.epoch_rng
        ck.rng.restore(self.generators)
        for observer, state in zip(self.observers, ck.observers, strict=True):
            observer.restore_history_state(state)
        for key in [k for k, v in vars(opt).items() if _plain_attr(k, v)]:
            if key not in ck.optimizer_attrs:
                delattr(opt, key)  # e.g. `_opt_called`, set by a scheduler at the first step
        vars(opt).update(ck.optimizer_attrs)
        loop.scenario.namespace.update(ck.scalars)
        restore_containers(loop.scenario.namespace, ck.containers)
        loop.events[:] = [e.event for e in self.entries[: ck.position]]

    def _batches(self, ck: Checkpoint) -> Iterator[Any] | None:
        """The checkpoint's epoch iterator again: made from the random state that shuffled
        that epoch, with the batches drawn then drawn again (None when none was open)."""
        data = self.loop.scenario.data
        if ck.data is None or data is None:
            return None
        epoch_rng, drawn = ck.data
        epoch_rng.restore(self.generators)
        batches = iter(data)
        for _ in range(drawn):
            next(batches)
        return batches

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
                self._maybe_checkpoint(force=i == last_forward and target - start > 4)
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
            assign(s.optimizer, *entry.args)
            s.events.append(entry.event)
            return entry.event
        raise HistoryError(f"cannot replay op {op!r}")


class _PythonState:
    """The Python objects of a checkpoint (counters, detector state), sized for the budget."""

    def __init__(self, live: set[int], *parts: Any) -> None:
        self.nbytes = sum(_py_bytes(p, live) for p in parts)


def _py_bytes(obj: Any, live: set[int], depth: int = 0) -> int:
    """Roughly the memory of plain Python data (tensors and arrays count their buffers;
    objects in `live`, shared with the running session, count nothing)."""
    if id(obj) in live:
        return 0
    if isinstance(obj, torch.Tensor):
        return _nbytes(obj)
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    size = sys.getsizeof(obj, 64)
    if depth > 8:
        return size
    if isinstance(obj, dict):
        return size + sum(
            _py_bytes(k, live, depth + 1) + _py_bytes(v, live, depth + 1) for k, v in obj.items()
        )
    if isinstance(obj, list | tuple | set | frozenset | deque):
        return size + sum(_py_bytes(v, live, depth + 1) for v in obj)
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return size + _py_bytes(vars(obj), live, depth + 1)
    return size


def _held_bytes(obj: Any) -> int:
    if isinstance(obj, torch.Tensor):
        return _nbytes(obj)
    if isinstance(obj, RngState):
        return obj.nbytes()
    if isinstance(obj, _PythonState):
        return obj.nbytes
    return 0


def _plain_attr(key: str, value: Any) -> bool:
    return isinstance(value, _SCALARS) and not key.startswith("__")


def _structure(optimizer: torch.optim.Optimizer) -> tuple[tuple[int, ...], ...]:
    """Which tensors each param group holds (a checkpoint restores into these)."""
    return tuple(tuple(id(p) for p in g["params"]) for g in optimizer.param_groups)


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
