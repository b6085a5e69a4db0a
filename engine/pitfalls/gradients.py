"""The gradients' scale: exploding and vanishing gradients."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator

from .. import fmt
from ..events import Finding
from .context import Clear, Context, lr_text


def grad_scale(ctx: Context) -> Iterator[Finding | Clear]:
    """exploding-grad / vanishing-grad: a fresh gradient's norm against its recent median,
    judged against the parameters' scale (a step along an exploded gradient, lr x norm,
    moves the parameters by a good part of their norm; a jump among the tiny gradients of a
    parameter converging to 0, as RMSprop's steps of about lr make them, does not) and the
    loss's progress (the shrinking gradients of a converging fit are not vanishing)."""
    if ctx.op != "backward" or ctx.error is not None:
        return
    th = ctx.thresholds
    for p in ctx.params:
        norm = p.grad_norm
        if not p.received or p.accumulated != 1 or norm is None or not math.isfinite(norm):
            continue
        if norm == 0 or len(p.recent_norms) < th.grad_warmup:
            continue
        median = statistics.median(p.recent_norms)
        if median <= 0:
            continue
        ratio = norm / median
        k = len(p.recent_norms)
        lr = max(ctx.lrs, default=1.0)
        rise = _rise(ctx)
        if (
            ratio > th.explode_factor
            and rise >= th.explode_loss_rise
            and lr * norm > th.explode_rel * ctx.params_norm()
        ):
            yield Finding(
                "exploding-grad",
                f"{p.name}.grad has norm {fmt.num(norm, 4)} at the backward at op "
                f"{ctx.op_index}, {fmt.num(ratio, 3)}x the median of its last {k} "
                f"({fmt.num(median, 4)}); a step along it (lr x norm = {fmt.num(lr * norm, 3)}) "
                f"is {fmt.num(lr * norm / max(ctx.params_norm(), 1e-300), 3)}x the norm of "
                f"the parameters, and the loss is {fmt.num(rise, 3)}x its scale above its best: "
                "the gradient exploded. "
                "Lower the learning rate "
                f"({lr_text(ctx)}) or clip gradients (torch.nn.utils.clip_grad_norm_).",
                param=p.name,
            )
        else:
            yield Clear("exploding-grad", p.name)
        if ratio < 1 / th.vanish_factor and _progress(ctx) < th.vanish_progress:
            yield Finding(
                "vanishing-grad",
                f"{p.name}.grad has norm {fmt.num(norm, 4)} at the backward at op "
                f"{ctx.op_index}, 1/{fmt.num(1 / ratio, 3)} of the median of its last {k} "
                f"({fmt.num(median, 4)}) while the loss has fallen by only "
                f"{100 * _progress(ctx):.3g}% of its first value: {p.name} has almost "
                "stopped learning. Check for "
                "saturating activations (sigmoid, tanh) or dead ReLUs and the scale of "
                "inputs and loss; normalization layers or residual connections help.",
                param=p.name,
            )
        else:
            yield Clear("vanishing-grad", p.name)


def _progress(ctx: Context) -> float:
    """How far the loss has fallen from its first value, as a fraction of it (0: not at all)."""
    if ctx.first is None or ctx.best is None or ctx.first == 0:
        return 0.0
    return (ctx.first - ctx.best) / abs(ctx.first)


def _rise(ctx: Context) -> float:
    """How far the current loss is above its best, in units of the loss's scale (as diverging
    measures it: max(|first|, |best|, first - best))."""
    if ctx.loss is None or ctx.first is None or ctx.best is None or not math.isfinite(ctx.loss):
        return 0.0
    obj = -ctx.loss if ctx.maximize else ctx.loss
    scale = max(abs(ctx.first), abs(ctx.best), ctx.first - ctx.best)
    return (obj - ctx.best) / scale if scale > 0 else 0.0
