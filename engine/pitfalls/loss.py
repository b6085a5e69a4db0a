"""The loss's health: one number, connected to autograd, finite, falling, still moving."""

from __future__ import annotations

import math
from collections.abc import Iterator
from itertools import pairwise

from .. import fmt
from ..events import Finding
from .context import Clear, Context, lr_text


def loss_not_scalar(ctx: Context) -> Iterator[Finding]:
    """forward returned a loss of several elements, for a backward() without a gradient."""
    shape = ctx.loss_shape
    if ctx.op != "forward" or not ctx.scalar_loss or shape is None or math.prod(shape) == 1:
        return
    yield Finding(
        "loss-not-scalar",
        f"forward returned a loss of shape {fmt.shape(shape)} ({math.prod(shape)} elements); "
        "backward() needs a single number: reduce it with .sum() or .mean()",
    )


def loss_no_grad(ctx: Context) -> Iterator[Finding]:
    """forward returned a loss not connected to autograd."""
    if ctx.op != "forward" or ctx.error is not None or ctx.loss_requires_grad is not False:
        return
    if not any(p.requires_grad for p in ctx.params):
        why = (
            "none of the optimizer's parameters requires grad "
            f"({', '.join(p.name for p in ctx.params[:3])}: requires_grad=False)"
        )
        fix = "create them with requires_grad=True"
    else:
        why = (
            "it was computed under torch.no_grad(), or from a detached copy of the "
            "parameters (.detach(), .item(), .numpy(), torch.tensor(...) of a result)"
        )
        fix = "compute the loss from the parameters themselves, with autograd on"
    value = (
        fmt.num(ctx.loss) if ctx.loss is not None else f"shape {fmt.shape(ctx.loss_shape or ())}"
    )
    yield Finding(
        "loss-no-grad",
        f"the loss of the forward at op {ctx.op_index} ({value}) has no grad_fn and "
        f"does not require grad: {why}. backward will fail; {fix}.",
    )


def non_finite(ctx: Context) -> Iterator[Finding | Clear]:
    """NaN or Inf in the loss (forward), a gradient (backward) or a parameter (step)."""
    if ctx.error is not None:
        return
    if ctx.op == "forward" and ctx.loss is not None and ctx.loss_shape is not None:
        if math.isfinite(ctx.loss):
            yield Clear("non-finite", "loss")
        else:
            before = next((x for x in reversed(ctx.losses[:-1]) if math.isfinite(x)), None)
            was = f"; the last finite loss was {fmt.num(before)}" if before is not None else ""
            bad = sorted(k for k in ctx.nonfinite if k != "loss" and not k.endswith(".grad"))
            if bad:
                cause = f"{', '.join(bad)} already is; reload (r) and lower the learning rate"
            elif ctx.step_count == 0:
                cause = (
                    "forward computes it from the initial values: look for log or sqrt of "
                    "values <= 0, a division by zero, or exp of large values"
                )
            else:
                cause = (
                    f"lower the learning rate ({lr_text(ctx)}), or guard log/sqrt/division in "
                    "forward against zero or negative inputs"
                )
            yield Finding(
                "non-finite",
                f"the loss is {fmt.num(ctx.loss)} from the forward at op {ctx.op_index}"
                f"{was}; everything computed from it will be NaN/Inf too: {cause}.",
                param="loss",
            )
    for p in ctx.params:
        if ctx.op == "backward" and p.received and p.grad_norm is not None:
            key = f"{p.name}.grad"
            if p.grad_nonfinite is None:
                yield Clear("non-finite", key)
            else:
                cause = (
                    "the loss itself is not finite"
                    if ctx.loss is not None and not math.isfinite(ctx.loss)
                    else "a derivative is infinite (sqrt or log at 0, a division by zero) "
                    "or the backward overflowed"
                )
                yield Finding(
                    "non-finite",
                    f"{key} is not finite since the backward at op {ctx.op_index} "
                    f"({p.grad_nonfinite}): {cause}. A step with it makes {p.name} "
                    f"non-finite: lower the learning rate ({lr_text(ctx)}) or clip gradients.",
                    param=key,
                )
        if ctx.op == "step" and p.moved:
            if p.value_nonfinite is None:
                yield Clear("non-finite", p.name)
            else:
                cause = (
                    f"the step applied {p.name}.grad, which is not finite"
                    if f"{p.name}.grad" in ctx.nonfinite
                    else "the update overflowed"
                )
                yield Finding(
                    "non-finite",
                    f"{p.name} is not finite since the step at op {ctx.op_index} "
                    f"({p.value_nonfinite}): {cause}. It cannot recover: reload (r) and "
                    f"lower the learning rate ({lr_text(ctx)}).",
                    param=p.name,
                )


def diverging(ctx: Context) -> Iterator[Finding | Clear]:
    """The loss rises over consecutive points, or grows far above its best."""
    if ctx.op != "forward" or ctx.error is not None or ctx.loss is None:
        return
    if not math.isfinite(ctx.loss) or ctx.first is None or ctx.best is None:
        return
    th = ctx.thresholds
    obj = -ctx.loss if ctx.maximize else ctx.loss
    scale = max(abs(ctx.first), abs(ctx.best), ctx.first - ctx.best)
    word = "fell" if ctx.maximize else "rose"
    how = ""
    if obj - ctx.best > th.diverge_factor * scale and scale > 0:
        how = (
            f"the loss is {fmt.num(ctx.loss)}, {fmt.num((obj - ctx.best) / scale, 3)}x "
            f"its scale ({fmt.num(scale, 4)}) away from its best "
            f"({fmt.num(-ctx.best if ctx.maximize else ctx.best)})"
        )
    n = th.diverge_rises
    tail = list(ctx.series[-(n + 1) :])
    if not how and ctx.series_new and len(tail) == n + 1:
        rising = all(b > a for a, b in pairwise(tail))
        start = tail[0]
        if (
            rising
            and tail[-1] - start >= th.diverge_min_rise * abs(start)
            and all(math.isfinite(x) for x in tail)
        ):
            shown = " → ".join(fmt.num(-x if ctx.maximize else x, 4) for x in tail)
            how = f"the loss {word} over the last {n} {ctx.series_unit}: {shown}"
    if not how:
        yield Clear("diverging")
        return
    yield Finding(
        "diverging",
        f"the loss is diverging at the forward at op {ctx.op_index}: {how}. The learning rate "
        f"({lr_text(ctx)}) is likely too large: lower it (e.g. by 10x).",
    )


def plateau(ctx: Context) -> Iterator[Finding | Clear]:
    """The loss stopped changing relative to its size while the gradient has not vanished."""
    if ctx.op != "forward" or ctx.error is not None or not ctx.series_new:
        return
    th = ctx.thresholds
    if len(ctx.series) <= th.plateau_patience:
        return
    a, b = ctx.series[-1 - th.plateau_patience], ctx.series[-1]
    if not (math.isfinite(a) and math.isfinite(b)):
        return
    size = max(abs(a), abs(b))
    rel = abs(b - a) / size if size > 0 else 0.0
    ratio = (
        ctx.grad_total / ctx.grad_total_max
        if ctx.grad_total is not None and ctx.grad_total_max > 0
        else 0.0
    )
    if rel >= th.plateau_rtol or ratio < th.plateau_grad_ratio:
        yield Clear("plateau")
        return
    sign = -1 if ctx.maximize else 1
    decay = ", decay it more slowly" if ctx.has_scheduler else ""
    yield Finding(
        "plateau",
        f"the loss stopped changing: it moved by {fmt.num(abs(b - a), 3)} "
        f"({fmt.num(rel, 2)} of its size) over the last {th.plateau_patience} {ctx.series_unit} "
        f"({fmt.num(sign * a)} → {fmt.num(sign * b)}), while the gradient norm is still "
        f"{100 * ratio:.3g}% of its largest: the steps are too small to make progress. "
        f"Raise the learning rate ({lr_text(ctx)}){decay} or use an adaptive optimizer such as "
        "Adam; "
        'if the loss cannot go lower, silence it with optdbg_config = {"silence": ["plateau"]}.',
    )
