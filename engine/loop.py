"""The loop state that observers read, whichever driver performs the ops.

Two drivers perform training-loop ops: the Session (a scenario; the user's keys or `--ops`
choose each op) and the tracer (a user's script; its own calls are the ops). Observers — the
pitfall detectors first — read the state an op left through `LoopState` only, never through
the driver's internals, so both drivers get the same findings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import torch

from .events import Event


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
