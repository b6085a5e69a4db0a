"""A checkpoint: what it copies of a loop (a detached copy of everything an op can change,
sharing what it can with the previous one), and putting it back."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..loop import Checkpointable, LoopCheckpoint, Stateful
from ..scenario import grad_tensors
from .copies import (
    SCALARS,
    PythonState,
    clone,
    clone_tree,
    keep,
    plain_attr,
    restore_containers,
    same_bits,
    scenario_containers,
    tensor_bytes,
    tensors_in,
)
from .rng import RngState, find_generators


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


class Copier:
    """Takes checkpoints of one loop and puts them back: the values and grads of the
    optimizer's parameters and of every other leaf tensor that requires grad, module
    buffers, optimizer and scheduler state, hyperparameters, random states, the data
    position, the scenario's scalars and plain containers, the driver's own state and the
    observers' state."""

    def __init__(self, loop: Checkpointable, observers: Sequence[Stateful] = ()) -> None:
        self.loop = loop
        self.observers = tuple(observers)
        scenario = loop.scenario
        self.generators = find_generators(scenario.namespace, scenario.data)
        """The random number generators the scenario holds (its globals' and its data's)."""
        self.opt_params = [t.tensor for t in loop.tracks]
        self.tensors, self.buffers = self._find_tensors()

    def _find_tensors(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        ns = self.loop.scenario.namespace
        tensors = {id(p): p for p in self.opt_params}
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

    def capture(
        self, position: int, prev: Checkpoint | None, epoch_rng: RngState | None
    ) -> Checkpoint:
        """The loop's state now, sharing with `prev` whatever has the same bits;
        `epoch_rng` is the random state that shuffled the current epoch."""
        loop = self.loop
        moved = loop.moved
        names = {id(t.tensor): t.name for t in loop.tracks}
        values: list[torch.Tensor] = []
        grads: list[torch.Tensor | None] = []
        for i, t in enumerate(self.tensors):
            step = moved.get(names.get(id(t), ""))
            optimized = i < len(self.opt_params)
            if step is not None and same_bits(step[1], t):
                values.append(step[1])  # the last step's copy of the value after it
            else:
                values.append(keep(t, None if optimized or prev is None else prev.values[i]))
            g = t.grad
            if g is None:
                grads.append(None)
            else:
                old = None if optimized or prev is None else prev.grads[i]
                grads.append(keep(g, old))
        buffers = [
            keep(b, prev.buffers[i] if prev is not None else None)
            for i, b in enumerate(self.buffers)
        ]
        opt = loop.optimizer
        opt_state = [clone_tree(opt.state[p]) if p in opt.state else None for p in self.opt_params]
        groups = [
            {k: clone_tree(v) for k, v in g.items() if k != "params"} for g in opt.param_groups
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
        if own.drawn is not None and epoch_rng is not None:
            data = (epoch_rng, own.drawn)
        ns = loop.scenario.namespace
        scalars = {k: v for k, v in ns.items() if not k.startswith("__") and isinstance(v, SCALARS)}
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
            epoch_rng=epoch_rng,
            loop=own,
            observers=[o.history_state() for o in self.observers],
            scalars=scalars,
            containers=scenario_containers(ns),
            optimizer_attrs={k: v for k, v in vars(opt).items() if plain_attr(k, v)},
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
        python = PythonState(live, ck.observers, ck.scalars, ck.containers, own.state)
        ck.held = [*held.values(), python]
        return ck

    def state_bytes(self) -> int:
        """Bytes of the optimizer state a checkpoint copies in any case (the least it
        needs; known without copying anything)."""
        state = self.loop.optimizer.state
        return sum(tensor_bytes(x) for p in self.opt_params for x in tensors_in(state.get(p, {})))

    def _memo(self) -> dict[int, Any]:
        """deepcopy memo that keeps live objects shared, not copied: the driver, the optimizer,
        the scenario and whatever its globals hold (tensors, modules, data, functions)."""
        loop = self.loop
        ns = loop.scenario.namespace
        shared: list[Any] = [loop, loop.optimizer, loop.scenario, ns]
        shared += [*self.tensors, *self.buffers, *self.generators]
        shared += [v for k, v in ns.items() if not k.startswith("__")]
        memo = {id(obj): obj for obj in shared}
        memo[id(memo)] = shared  # deepcopy's keep-alive slot
        return memo

    def restore(self, ck: Checkpoint) -> None:
        """Put the loop's state back as `ck` holds it (its event log aside: the history's)."""
        loop = self.loop
        with torch.no_grad():
            for t, v in zip(self.tensors, ck.values, strict=True):
                t.copy_(v)
            for b, v in zip(self.buffers, ck.buffers, strict=True):
                b.copy_(v)
        for t, g in zip(self.tensors, ck.grads, strict=True):
            t.grad = None if g is None else clone(g)
        opt = loop.optimizer
        for p, state in zip(self.opt_params, ck.opt_state, strict=True):
            if state is None:
                opt.state.pop(p, None)
            else:
                opt.state[p] = clone_tree(state)
        for group, saved in zip(opt.param_groups, ck.groups, strict=True):
            for key in [k for k in group if k != "params" and k not in saved]:
                del group[key]
            for key, value in saved.items():
                group[key] = clone_tree(value)
        scheduler = loop.scenario.scheduler
        if ck.scheduler is not None and scheduler is not None:
            scheduler.load_state_dict(copy.deepcopy(ck.scheduler, self._memo()))
        loop.restore(ck.loop, self._batches(ck))
        ck.rng.restore(self.generators)
        for observer, state in zip(self.observers, ck.observers, strict=True):
            observer.restore_history_state(state)
        for key in [k for k, v in vars(opt).items() if plain_attr(k, v)]:
            if key not in ck.optimizer_attrs:
                delattr(opt, key)  # e.g. `_opt_called`, set by a scheduler at the first step
        vars(opt).update(ck.optimizer_attrs)
        loop.scenario.namespace.update(ck.scalars)
        restore_containers(loop.scenario.namespace, ck.containers)

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


def structure(optimizer: torch.optim.Optimizer) -> tuple[tuple[int, ...], ...]:
    """Which tensors each param group holds (a checkpoint restores into these)."""
    return tuple(tuple(id(p) for p in g["params"]) for g in optimizer.param_groups)
