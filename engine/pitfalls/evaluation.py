"""What the evaluations say: a model that fits its training data at the expense of unseen data."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise

from .. import fmt
from ..events import Finding
from .context import Clear, Context


def overfitting(ctx: Context) -> Iterator[Finding | Clear]:
    """The evaluation loss rose at `overfit_rises` evaluations in a row while the training
    loss (its mean between evaluations) fell over the same stretch."""
    n = ctx.thresholds.overfit_rises
    window = ctx.evals[-(n + 1) :]
    if ctx.error is not None or len(window) < n + 1:
        return
    first, last = window[0][1], window[-1][1]
    if not all(b[0] > a[0] for a, b in pairwise(window)):
        yield Clear("overfitting")
    elif first is not None and last is not None and last < first:
        yield Finding(
            "overfitting",
            f"the evaluation loss rose at {n} evaluations in a row "
            f"({fmt.num(window[0][0])} → {fmt.num(window[-1][0])}) while the training loss "
            f"fell ({fmt.num(first)} → {fmt.num(last)}): the model fits the training data "
            "at the expense of unseen data. Stop at the best evaluation, or regularize.",
        )
