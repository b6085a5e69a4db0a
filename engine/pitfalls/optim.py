"""The optimizer and its schedule: decay on 1-d parameters, an optimizer recreated every
iteration, a learning rate sent to ~0 or far up."""

from __future__ import annotations

from collections.abc import Iterator

from .. import fmt
from ..events import Finding
from .context import Clear, Context


def decay_on_bias_norm(ctx: Context) -> Iterator[Finding]:
    """Notice at load: weight decay on biases and normalization weights."""
    for group, wd, names in ctx.decay_1d:
        shown = ", ".join(names[:4]) + (f" (+{len(names) - 4} more)" if len(names) > 4 else "")
        yield Finding(
            "decay-on-bias-norm",
            f"notice: param group {group} applies weight_decay={fmt.num(wd)} to {len(names)} "
            f"1-d parameter(s) ({shown}): biases and normalization weights usually should not "
            "be decayed. Put them in a group with weight_decay=0.",
            param=f"group {group}",
        )


def optimizer_recreated(ctx: Context) -> Iterator[Finding]:
    """A fresh optimizer (or a reset state) stepping what a stateful optimizer had stepped."""
    for s in ctx.optimizer_steps:
        if not s.fresh or s.previous is None or not s.stateful or s.steps != 1:
            continue  # once: a loop that recreates it does so at every iteration
        what = (
            f"the {s.name}'s state was reset"
            if s.previous == "reset"
            else f"a new {s.name} stepped parameters that {s.previous} had already stepped"
        )
        yield Finding(
            "optimizer-recreated",
            f"the step at op {ctx.op_index}: {what}, so its state (moments, momentum, step "
            "count) started over; a loop that does this loses it at every iteration. Create "
            "the optimizer once, before the loop.",
        )


def lr_schedule_odd(ctx: Context) -> Iterator[Finding | Clear]:
    """The lr stays ~0 for a good part of the run, or rises far above where it started."""
    if ctx.op != "step" or ctx.error is not None or not ctx.lr_ref:
        return
    th = ctx.thresholds
    pairs = list(zip(ctx.lrs, ctx.lr_ref, strict=False))
    ups = [(lr, ref) for lr, ref in pairs if lr > th.lr_rise_factor * ref > 0]
    if ups:
        lr, ref = ups[0]
        yield Finding(
            "lr-schedule-odd",
            f"after the step at op {ctx.op_index} the learning rate is {fmt.num(lr)}, "
            f"{fmt.num(lr / ref, 3)}x where it started ({fmt.num(ref)}): the schedule sends "
            "it up without bound. Check the scheduler's arguments (a gamma above 1?).",
            param="up",
        )
    else:
        yield Clear("lr-schedule-odd", "up")
    n = ctx.lr_zero_steps
    if n < th.lr_zero_patience or n < th.lr_zero_share * ctx.step_count:
        if n == 0:
            yield Clear("lr-schedule-odd", "zero")
        return
    lr, ref = min(pairs, key=lambda x: x[0] / x[1] if x[1] else 1.0)
    yield Finding(
        "lr-schedule-odd",
        f"the learning rate has been below {fmt.num(th.lr_zero_ratio)} of its start for "
        f"the last {n} of {ctx.step_count} steps (now {fmt.num(lr)}, from {fmt.num(ref)}; "
        f"step at op {ctx.op_index}): the schedule sent it to about zero long before the end, "
        "so those steps do nothing. Decay more slowly (gamma closer to 1, a larger step_size "
        "or T_max) or train for fewer steps.",
        param="zero",
    )
