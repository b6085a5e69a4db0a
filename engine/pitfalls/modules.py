"""The network's modules during training: eval mode left on, dead ReLU layers."""

from __future__ import annotations

from collections.abc import Iterator

from ..events import Finding
from .context import Clear, Context


def eval_mode_training(ctx: Context) -> Iterator[Finding | Clear]:
    """A Dropout/BatchNorm module in eval mode during a forward that trains."""
    if ctx.op != "forward" or ctx.error is not None or ctx.loss_requires_grad is not True:
        return
    if not ctx.eval_modules:
        yield Clear("eval-mode-training")
        return
    names = ", ".join(ctx.eval_modules[:3])
    more = f" (+{len(ctx.eval_modules) - 3} more)" if len(ctx.eval_modules) > 3 else ""
    yield Finding(
        "eval-mode-training",
        f"the forward at op {ctx.op_index} trains (its loss requires grad) while {names}{more} "
        "is in eval mode: dropout is off and batch norm normalizes with its running "
        "statistics, not the batch's. Call model.train() after evaluating, before training.",
    )


def dead_relu(ctx: Context) -> Iterator[Finding | Clear]:
    """A ReLU layer whose units output zero for every input of the batch."""
    if ctx.op != "forward" or ctx.error is not None:
        return
    for r in ctx.relus:
        if r.dead < ctx.thresholds.dead_relu_fraction * r.units:
            yield Clear("dead-relu", r.name)
            continue
        yield Finding(
            "dead-relu",
            f"{r.name} at the forward at op {ctx.op_index}: {r.dead} of its {r.units} units "
            f"output 0 for all {r.batch} inputs of the batch, so no gradient flows through "
            "them. Lower the learning rate, initialize biases at 0 or small positive values, "
            "normalize the inputs, or use LeakyReLU.",
            param=r.name,
        )
