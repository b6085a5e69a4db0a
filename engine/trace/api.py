"""`with trace() as t: train()`: the tracer from Python, collecting the records."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..events import Event
from ..pitfalls import Thresholds
from .tracer import Tracer, env_rank


class Trace:
    """What `trace()` collected: the tracer's events and records."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    @property
    def events(self) -> list[Event]:
        return self.tracer.events

    @property
    def records(self) -> list[dict[str, Any]]:
        """One JSON record per op (as `optdbg trace --json` writes them)."""
        return list(self.tracer.records_so_far())

    def warnings(self) -> list[str]:
        """The codes of every warning, in order."""
        return [w.code for e in self.tracer.events for w in e.warnings]


@contextmanager
def trace(max_ops: int | None = None, thresholds: Thresholds | None = None) -> Iterator[Trace]:
    """Trace the ops of the code run inside the block: every backward, and every step and
    zero_grad of every optimizer (those created before the block are found at their first
    step or zero_grad)."""
    tracer = Tracer(rank=env_rank(), max_ops=max_ops, thresholds=thresholds)
    with tracer:
        yield Trace(tracer)
