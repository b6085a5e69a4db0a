"""The loop's order: gradients summed by mistake, step without a gradient, a stale gradient or
graph, backward twice, the scheduler before the optimizer."""

from __future__ import annotations

from collections.abc import Iterator

from .. import fmt
from ..events import Finding
from ..snapshot import TensorView
from .context import Context


def backwards_per_zero(pattern: tuple[str, ...]) -> int:
    """The most backward passes an op pattern makes between two zero_grads (cyclically):
    the accumulation it means (`Context.accumulation`)."""
    if "zero_grad" not in pattern:
        return 1  # nothing clears .grad: every second backward adds to the first
    start = pattern.index("zero_grad")
    turned = pattern[start + 1 :] + pattern[: start + 1]
    most = count = 0
    for op in turned:
        if op == "backward":
            count += 1
            most = max(most, count)
        elif op == "zero_grad":
            count = 0
    return max(most, 1)


def grad_accumulated(ctx: Context) -> Iterator[Finding]:
    """backward summed more passes into a .grad than the loop accumulates on purpose."""
    allowed = ctx.accumulation
    if ctx.op != "backward" or ctx.error is not None or allowed is None:
        return
    for p in ctx.params:
        if not p.received or p.accumulated <= allowed:
            continue
        added = (
            fmt.tensor(p.added)
            if isinstance(p.added, TensorView)
            else f"a gradient of norm {p.added:.4g}"
        )
        yield Finding(
            "grad-accumulated",
            f"{p.name}.grad is {ctx.text(p.name, 'grad', limit=8)}: the sum of {p.accumulated} "
            f"backward passes since the last zero_grad (this pass added {added}). "
            "PyTorch adds new gradients to .grad; call optimizer.zero_grad() before backward.",
            param=p.name,
        )


def step_without_grad(ctx: Context) -> Iterator[Finding]:
    """step while no optimizer parameter has a gradient from a backward since zero_grad."""
    if ctx.op != "step" or ctx.error is not None:
        return
    if any(p.has_grad and p.accumulated > 0 for p in ctx.params):
        return
    if ctx.last_zero_index is not None:
        why = f"zero_grad at op {ctx.last_zero_index} cleared the gradients, no backward since"
    else:
        why = "no backward has run yet"
    names = ", ".join(
        f"{p.name}.grad is {'zero' if p.has_grad else 'None'}" for p in ctx.params[:3]
    )
    more = f" (+{len(ctx.params) - 3} more)" if len(ctx.params) > 3 else ""
    yield Finding(
        "step-without-grad",
        f"step at op {ctx.op_index} had no gradient to apply: {why} ({names}{more}). "
        "Run backward (b) before step: forward, backward, step, zero_grad.",
    )


def stale_grad(ctx: Context) -> Iterator[Finding]:
    """step again with the gradients already used by the previous step."""
    if ctx.op != "step" or ctx.error is not None or ctx.last_step_index is None:
        return
    if ctx.backward_since_step:
        return
    used = [p for p in ctx.params if p.has_grad and p.accumulated > 0]
    if not used:
        return
    p = used[0]
    more = f" (and {len(used) - 1} more parameters)" if len(used) > 1 else ""
    yield Finding(
        "stale-grad",
        f"step at op {ctx.op_index} applied {p.name}.grad = {ctx.text(p.name, 'grad')}{more} "
        f"again: the step at op {ctx.last_step_index} already used these gradients and no "
        f"backward ran since, so {p.name} moved twice along the same old gradient "
        f"(now {ctx.text(p.name, 'value')}). Run forward and backward (f b) before each step.",
        param=p.name,
    )


_SECOND_TIME = "backward through the graph a second time"
_INPLACE = "modified by an inplace operation"


def backward_twice(ctx: Context) -> Iterator[Finding]:
    """backward refused by PyTorch because the graph was already freed."""
    if ctx.op != "backward" or ctx.error is None or _SECOND_TIME not in ctx.error.message:
        return
    first = (
        f"the backward at op {ctx.backward_index}"
        if ctx.backward_index is not None
        else "an earlier backward"
    )
    made = f"the forward at op {ctx.forward_index}" if ctx.forward_index is not None else "forward"
    yield Finding(
        "backward-twice",
        f"backward at op {ctx.op_index} went through the graph of {made} a second time: "
        f"{first} freed the intermediate values it saved, so PyTorch refused. Run forward "
        "(f) again before each backward; pass retain_graph=True to the first backward only "
        "if you mean to backpropagate twice through the same graph.",
    )


def stale_graph(ctx: Context) -> Iterator[Finding]:
    """backward on a loss computed before a step changed the parameters."""
    if ctx.op != "backward" or ctx.changed_index is None:
        return
    if ctx.error is not None and _SECOND_TIME in ctx.error.message:
        return  # backward-twice says it; the graph is gone anyway
    made = f"the forward at op {ctx.forward_index}"
    if ctx.error is None:
        got = next((p for p in ctx.params if p.received), None)
        now = (
            f" ({got.name}.grad is now {ctx.text(got.name, 'grad')} while {got.name} is "
            f"{ctx.text(got.name, 'value')})"
            if got is not None
            else ""
        )
        outcome = (
            "PyTorch did not complain, but the gradient it computed belongs to the old "
            f"values of the parameters, not to their current ones{now}"
        )
    elif _INPLACE in ctx.error.message:
        outcome = "PyTorch refused: a value the graph saved was changed in place by the step"
    else:
        return
    yield Finding(
        "stale-graph",
        f"backward at op {ctx.op_index} used the loss of {made}, computed before the step at op "
        f"{ctx.changed_index} changed the parameters: {outcome}. Run forward (f) again after "
        "each step, then backward.",
    )


def scheduler_order(ctx: Context) -> Iterator[Finding]:
    """The scheduler took its first step before the optimizer's first step."""
    if ctx.scheduler_at_load:
        yield Finding(
            "scheduler-order",
            "the scenario stepped the scheduler while loading, before any optimizer step: "
            "PyTorch skips the first value of the schedule. Remove the scheduler.step() "
            "call: optdbg steps the scheduler after each optimizer step (or per epoch with "
            'scheduler_every = "epoch").',
        )
    elif ctx.scheduler_stepped is not None:
        before, after = ctx.scheduler_stepped
        yield Finding(
            "scheduler-order",
            f"the scheduler stepped during the {ctx.op} at op {ctx.op_index} (lr "
            f"{fmt.num(before)} → {fmt.num(after)}) before the optimizer ever stepped: "
            "PyTorch skips the first value of the schedule. Call scheduler.step() after "
            "optimizer.step() (step (s) at least once per epoch when stepping per epoch).",
        )


def inplace_saved_tensor(ctx: Context) -> Iterator[Finding]:
    """backward refused for a saved tensor an in-place op modified (not a step's doing)."""
    found = ctx.inplace
    if ctx.op != "backward" or found is None or ctx.changed_index is not None:
        return
    if found.sites:
        shown = "; ".join(f"{where}: {text}" for where, text in found.sites[:3])
        where = f"the in-place op in forward: {shown}"
    else:
        where = "an in-place op in forward (x += ..., x[...] = ..., x.op_(), inplace=True)"
    version = f" ({found.version})" if found.version else ""
    yield Finding(
        "inplace-saved-tensor",
        f"backward at op {ctx.op_index} failed: {found.tensor} was saved for backward and "
        f"then modified{version} by {where}. Make it out of place (x = x + 1, relu instead "
        "of relu_, inplace=False) or clone before modifying, then reload (r).",
    )
