"""Memory: loss tensors kept across iterations with their graphs."""

from __future__ import annotations

from collections.abc import Iterator

from ..events import Finding
from .context import Context


def loss_history_retained(ctx: Context) -> Iterator[Finding]:
    """A global keeps the graphs of several forwards (total += loss)."""
    for name, how in ctx.retained:
        yield Finding(
            "loss-history-retained",
            f"after the forward at op {ctx.op_index}, {how}: every iteration's graph stays "
            f"in memory and {name} grows without bound (the memory leak of the PyTorch FAQ). "
            "Keep the number: total += loss.item() (or losses.append(loss.item())).",
            param=name,
        )
