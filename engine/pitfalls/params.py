"""Which tensors the loop trains: parameters outside the graph, outside the optimizer, frozen."""

from __future__ import annotations

from collections.abc import Iterator

from .. import fmt
from ..events import Finding
from .context import Clear, Context


def param_not_in_graph(ctx: Context) -> Iterator[Finding | Clear]:
    """After backward, an optimizer parameter (requiring grad) still has no gradient."""
    if ctx.op != "backward" or ctx.error is not None:
        return
    for p in ctx.params:
        if p.received:
            yield Clear("param-not-in-graph", p.name)
        elif p.requires_grad and p.accumulated == 0:
            yield Finding(
                "param-not-in-graph",
                f"{p.name} has no gradient after the backward at op {ctx.op_index}: the loss of "
                f"the forward at op {ctx.forward_index} does not depend on it, so step never "
                f"moves it. Use {p.name} in forward, or remove it from the optimizer.",
                param=p.name,
            )


def param_not_in_optimizer(ctx: Context) -> Iterator[Finding]:
    """A scenario tensor requiring grad received a gradient the optimizer will not use."""
    if ctx.op != "backward" or ctx.error is not None:
        return
    for e in ctx.extras:
        yield Finding(
            "param-not-in-optimizer",
            f"{e.name} (shape {fmt.shape(e.shape)}) requires grad and received a gradient "
            f"of norm {fmt.num(e.grad_norm, 4)} at the backward at op {ctx.op_index}, but the "
            f"optimizer does not hold it: step never changes it. Add {e.name} to the "
            "optimizer's parameters, or create it with requires_grad=False if it is a "
            "constant.",
            param=e.name,
        )


def frozen_param(ctx: Context) -> Iterator[Finding | Clear]:
    """An optimizer parameter with requires_grad=False (checked on every op)."""
    for p in ctx.params:
        if p.requires_grad:
            yield Clear("frozen-param", p.name)
        else:
            yield Finding(
                "frozen-param",
                f"{p.name} is in the optimizer but has requires_grad=False: it never "
                f"gets a gradient and never moves. Create it with requires_grad=True (or "
                f"call {p.name}.requires_grad_()), or leave it out of the optimizer.",
                param=p.name,
            )


def param_replaced(ctx: Context) -> Iterator[Finding]:
    """A parameter's global name rebound to another tensor (w = w - lr * w.grad)."""
    for name, what in ctx.replaced:
        yield Finding(
            "param-replaced",
            f"after the {ctx.op} at op {ctx.op_index}, the name {name} holds {what}, no longer "
            f"the parameter being trained: the update rebinds {name} instead of changing it, "
            f"so the optimizer (or the update) keeps the old tensor and forward now computes "
            f"through a growing graph. Update in place: with torch.no_grad(): {name} -= lr * "
            f"{name}.grad.",
            param=name,
        )
