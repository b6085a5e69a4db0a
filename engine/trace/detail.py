"""What the TUI shows of a traced script beyond the records (the tracer's `detail` mode):
each step's update with its numbers (for engine.rules), and each loss series by its name.

Headless runs build none of it: copies of the parameters around every step are what the
update rule needs, and only the paused TUI shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..session import STATE_DETAIL_LIMIT, UpdateDetail
from ..snapshot import plain, view
from .naming import Where


@dataclass(frozen=True)
class StepInfo:
    """An optimizer's latest step: where the script made it and each parameter's numbers."""

    optimizer: str
    """Its label (the script's variable, or its index)."""
    kind: str
    """Its class name (Adam, SGD, ...)."""
    index: int
    """The step's op index."""
    where: Where
    updates: tuple[UpdateDetail, ...]


class StepCopies:
    """The values an optimizer's step changes, copied just before it runs."""

    def __init__(self, optimizer: torch.optim.Optimizer, moving: list[tuple[str, torch.Tensor]]):
        self.optimizer = optimizer
        self.moving = moving
        self.before = {name: p.detach().clone() for name, p in moving}
        self.grads = {name: view(p.grad) for name, p in moving}
        self.state = {
            name: _copy_state(optimizer.state.get(p, {}))
            for name, p in moving
            if p.numel() <= STATE_DETAIL_LIMIT
        }
        self.hyper = {
            id(p): {k: plain(v) for k, v in g.items() if k != "params"}
            for g in optimizer.param_groups
            for p in g["params"]
        }

    def finish(self, label: str, index: int, where: Where) -> StepInfo:
        """The step's numbers, once it ran (detached views)."""
        kind = type(self.optimizer).__name__
        updates = []
        for name, p in self.moving:
            before, after = view(self.before[name]), view(p)
            delta = view(p.detach() - self.before[name])
            assert before is not None and after is not None and delta is not None
            state_after = self.optimizer.state.get(p, {})
            updates.append(
                UpdateDetail(
                    name=name,
                    optimizer=kind,
                    hyper=self.hyper.get(id(p), {}),
                    before=before,
                    grad=self.grads[name],
                    after=after,
                    delta=delta,
                    state_before={k: plain(v) for k, v in self.state.get(name, {}).items()},
                    state_after={k: plain(v) for k, v in state_after.items()},
                )
            )
        return StepInfo(label, kind, index, where, tuple(updates))


def _copy_state(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v.detach().clone() if isinstance(v, torch.Tensor) else v for k, v in state.items()}
