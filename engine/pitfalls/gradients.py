"""The gradients' scale: exploding and vanishing gradients."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator

from .. import fmt
from ..events import Finding
from .context import Clear, Context, lr_text


def grad_scale(ctx: Context) -> Iterator[Finding | Clear]:
    """exploding-grad / vanishing-grad: a fresh gradient's norm against its recent median."""
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
        if ratio > th.explode_factor:
            yield Finding(
                "exploding-grad",
                f"{p.name}.grad has norm {fmt.num(norm, 4)} at the backward at op "
                f"{ctx.op_index}, {fmt.num(ratio, 3)}x the median of its last {k} "
                f"({fmt.num(median, 4)}): the gradient exploded. Lower the learning rate "
                f"({lr_text(ctx)}) or clip gradients (torch.nn.utils.clip_grad_norm_).",
                param=p.name,
            )
        else:
            yield Clear("exploding-grad", p.name)
        if ratio < 1 / th.vanish_factor:
            yield Finding(
                "vanishing-grad",
                f"{p.name}.grad has norm {fmt.num(norm, 4)} at the backward at op "
                f"{ctx.op_index}, 1/{fmt.num(1 / ratio, 3)} of the median of its last {k} "
                f"({fmt.num(median, 4)}): {p.name} has almost stopped learning. Check for "
                "saturating activations (sigmoid, tanh) or dead ReLUs and the scale of "
                "inputs and loss; normalization layers or residual connections help.",
                param=p.name,
            )
        else:
            yield Clear("vanishing-grad", p.name)
