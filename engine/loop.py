"""The loop state that observers read, whichever driver performs the ops.

Two drivers perform training-loop ops: the Session (a scenario; the user's keys or `--ops`
choose each op) and the tracer (a user's script; its own calls are the ops). Observers — the
pitfall detectors first — read the state an op left through `LoopState` only, never through
the driver's internals, so both drivers get the same findings. The history checkpoints and
replays a driver through `Checkpointable`, and the observers' own state through `Stateful`.
No observer imports a driver: the dependency goes one way (an import contract checks it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch

from .events import Event

if TYPE_CHECKING:
    from .scenario import Scenario


class Track(Protocol):
    """One parameter being debugged and its gradient bookkeeping."""

    @property
    def name(self) -> str: ...

    @property
    def tensor(self) -> torch.Tensor: ...

    @property
    def accumulated(self) -> int:
        """Backward passes summed into `.grad` since it was last cleared (0: none)."""
        ...


class LoopState(Protocol):
    """What an op left behind, read-only, for observers."""

    @property
    def tracks(self) -> Sequence[Track]:
        """Every parameter of every optimizer (or of the manual update), in order."""
        ...

    @property
    def received(self) -> Mapping[str, object]:
        """The names of the parameters that received a gradient in the latest backward."""
        ...

    @property
    def param_groups(self) -> Sequence[Mapping[str, Any]]:
        """Every optimizer's param groups, in order."""
        ...

    @property
    def scheduler(self) -> Any | None:
        """The LR scheduler the driver steps, if any."""
        ...

    @property
    def optimizer_stepped(self) -> bool:
        """Some optimizer's step() has run (PyTorch's `_opt_called`)."""
        ...

    @property
    def events(self) -> Sequence[Event]: ...

    @property
    def loss(self) -> torch.Tensor | None:
        """The latest loss tensor (its graph included)."""
        ...

    @property
    def loss_value(self) -> float | None: ...

    @property
    def loss_history(self) -> Sequence[float]:
        """Every scalar loss so far, one per forward."""
        ...

    @property
    def step_count(self) -> int: ...

    @property
    def epoch(self) -> int: ...


@dataclass(frozen=True)
class LoopCheckpoint:
    """A driver's own part of a history checkpoint (its counters, bookkeeping and last step
    records), detached; the history keeps it and hands it back to `Checkpointable.restore`."""

    drawn: int | None
    """Batches drawn from the current epoch's iterator; None when no iterator is open."""
    tensors: tuple[torch.Tensor, ...]
    """Every tensor it holds (counted once against the history's memory budget)."""
    state: object
    """The rest, the driver's own: the history never reads it."""


class Checkpointable(Protocol):
    """A driver whose loop state the history checkpoints, restores and replays: everything
    `engine.history` knows of the Session."""

    @property
    def scenario(self) -> Scenario: ...

    @property
    def optimizer(self) -> torch.optim.Optimizer: ...

    @property
    def tracks(self) -> Sequence[Track]: ...

    @property
    def loss(self) -> torch.Tensor | None: ...

    @property
    def loss_value(self) -> float | None: ...

    @property
    def moved(self) -> Mapping[str, tuple[torch.Tensor, torch.Tensor]]:
        """Each parameter the last step moved: its value before and after (detached copies,
        which a checkpoint may share)."""
        ...

    events: list[Event]
    """The ops performed, in order (the history rewinds it on undo)."""
    capture_graph: bool
    """Watch the graph during ops (the history turns it off while replaying)."""

    def checkpoint(self) -> LoopCheckpoint:
        """The driver's own state now, detached."""
        ...

    def restore(self, saved: LoopCheckpoint, batches: Iterator[Any] | None) -> None:
        """Put back the state `checkpoint` returned, once the history has restored the
        tensors, optimizer and scheduler; `batches` is the current epoch's iterator with
        `saved.drawn` batches drawn (None when `saved.drawn` is None)."""
        ...

    def perform_op(self, op: str, args: tuple[Any, ...] = ()) -> Event:
        """Perform a loop op (forward, backward, step, zero_grad, evaluate) by name, or a
        hyperparameter set ("set", args: group, key, value) as the user made it."""
        ...


GradState = tuple[torch.Tensor | None, int | None]
"""A `.grad` as an op found it: the tensor (None when cleared) and its version counter."""


def grad_state(grad: torch.Tensor | None) -> GradState:
    return grad, None if grad is None else grad._version


def grad_received(now: torch.Tensor | None, before: GradState) -> bool:
    """Whether a backward put a gradient into `.grad`, found as `before`: it is another
    tensor now, or the same one added to in place (its version counter moved). Read after
    the backward, it needs no hook on the parameter (a plain loop's backward runs none)."""
    grad, version = before
    return now is not None and (now is not grad or now._version != version)


class Stateful(Protocol):
    """An observer whose state the history keeps in every checkpoint (the pitfall
    detectors: their windows of past losses and grads)."""

    def history_state(self) -> Any: ...

    def restore_history_state(self, state: Any) -> None: ...
