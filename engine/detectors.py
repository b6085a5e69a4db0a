"""Pitfall detectors: every classic optimization-loop mistake named, located and explained.

Each detector is a pure function over a read-only `Context` built after every op (through
`Detectors.after`) from the `LoopState` the op left, whichever driver performed it (the
Session or the tracer). It yields a `Finding` (stable code, message with the
actual numbers, parameter name) for a mistake it sees at this op, or a `Clear` when it
checked a condition and found it no longer holds.

Two kinds of codes:

- *per op* (`grad-accumulated`, `step-without-grad`, `stale-grad`, `backward-twice`,
  `stale-graph`, `loss-not-scalar`, `loss-no-grad`): the op itself is the mistake, so
  every op that makes it is warned;
- *conditions* (`non-finite`, `diverging`, `plateau`, `exploding-grad`, `vanishing-grad`,
  `param-not-in-graph`, `param-not-in-optimizer`, `frozen-param`, `scheduler-order`):
  reported once, on the op where the condition first appears, and again only after a
  `Clear` said it went away (per parameter where it names one).

Thresholds (`Thresholds`, all configurable per scenario with
`optdbg_config = {"plateau_patience": 100, "silence": ["plateau"]}`):

=====================  =======  ==========================================================
name                   default  meaning
=====================  =======  ==========================================================
diverge_rises          5        `diverging` when the loss rose on this many consecutive
                                points of the loss series (forwards when every forward
                                sees the same data; epoch means for mini-batches) ...
diverge_min_rise       0.5      ... and the total rise is at least this fraction of the
                                loss where the rises began
diverge_factor         10       `diverging` also when a loss exceeds its best by this many
                                times max(|first|, |best|, first - best)
plateau_patience       50       `plateau` compares the loss series now with this many
                                points ago ...
plateau_rtol           1e-4     ... and fires when it moved by less than this fraction of
                                its size ...
plateau_grad_ratio     1e-3     ... while the gradient norm is still at least this fraction
                                of the largest seen (a vanished gradient means converged)
grad_window            10       exploding/vanishing compare a gradient norm with the
                                median of this many recent norms of the same parameter ...
grad_warmup            5        ... once at least this many are known
explode_factor         100      `exploding-grad`: norm above factor x median
vanish_factor          1000     `vanishing-grad`: norm below median / factor (exact zeros
                                are not counted: a zero gradient is a converged one)
silence                ()       codes never reported for this scenario
=====================  =======  ==========================================================

With these defaults, plain correct loops (`i` repeated) on every built-in scenario stay
silent for 200 iterations (2000 for polynomial_sin), except where the loss really blows
up: quadratic_bowl_lr10 diverges by design (diverging at its 2nd forward, exploding-grad,
then non-finite), log_xy's loss has no minimum and turns NaN at its 53rd forward, and
lr_schedule's decayed learning rate stalls the loss short of the minimum (plateau after
about 125 iterations, rightly).

Cost: per op, a Python pass over the optimizer's parameter list (attribute reads); one
norm per parameter that received a gradient at backward and one per parameter a step
changed (computed in float64 on the torch side: finite exactly when every element is);
nothing else touches tensor elements. Messages are formatted only when a finding fires.
"""

from __future__ import annotations

import ast
import math
import statistics
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import torch

from . import fmt
from .errors import ScenarioError, source_line
from .events import Event, Finding, OpError
from .scenario import Scenario, grad_tensors
from .snapshot import view

if TYPE_CHECKING:
    from .loop import LoopState


class Explanation(NamedTuple):
    meaning: str
    """What the warning means, in general terms."""
    fix: str
    """How to fix it."""


EXPLANATIONS: dict[str, Explanation] = {
    "grad-accumulated": Explanation(
        "backward added its gradient to a .grad that already held one since the last "
        "zero_grad: PyTorch sums gradients, so the next step uses their sum",
        "call optimizer.zero_grad() once per iteration, before backward (unless you "
        "accumulate gradients on purpose)",
    ),
    "step-without-grad": Explanation(
        "step ran while no optimizer parameter had a gradient: nothing moved",
        "run backward before step: forward, backward, step, zero_grad",
    ),
    "stale-grad": Explanation(
        "step ran again with the gradients a previous step already used (no backward "
        "since): the parameters moved twice along the same old gradient",
        "run forward and backward before each step",
    ),
    "backward-twice": Explanation(
        "backward went through a graph that an earlier backward already freed; PyTorch refuses it",
        "run forward again before each backward (or pass retain_graph=True to the first "
        "backward when backpropagating twice on purpose)",
    ),
    "stale-graph": Explanation(
        "backward ran on a loss computed before the parameters last changed: its gradient "
        "belongs to the old values (PyTorch raises only when a saved tensor changed)",
        "run forward again after each step, then backward",
    ),
    "param-not-in-graph": Explanation(
        "after backward an optimizer parameter still has no gradient: the loss does not "
        "depend on it, so step never moves it",
        "use the parameter in forward, or remove it from the optimizer",
    ),
    "param-not-in-optimizer": Explanation(
        "a tensor of the scenario that requires grad received a gradient, but the "
        "optimizer does not hold it: it never moves",
        "add it to the optimizer's parameters, or create it with requires_grad=False",
    ),
    "frozen-param": Explanation(
        "an optimizer parameter has requires_grad=False: it never gets a gradient and never moves",
        "create it with requires_grad=True (or call .requires_grad_()), or leave it out of "
        "the optimizer if it is meant to stay fixed",
    ),
    "loss-not-scalar": Explanation(
        "forward returned a loss with more than one element; backward() needs one number",
        "reduce the loss in forward with .sum() or .mean()",
    ),
    "loss-no-grad": Explanation(
        "the loss has no grad_fn: it is not connected to any tensor that requires grad, so "
        "backward will fail",
        "compute the loss from the parameters with autograd on: no torch.no_grad(), no "
        ".detach() or .item() on the way, parameters created with requires_grad=True",
    ),
    "diverging": Explanation(
        "the loss rises instead of falling: the learning rate is likely too large",
        "lower the learning rate (e.g. by 10x), or clip gradients",
    ),
    "non-finite": Explanation(
        "NaN or Inf appeared in the loss, a gradient or a parameter; everything computed "
        "from it is NaN or Inf too",
        "lower the learning rate; guard log/sqrt/division against zero or negative inputs",
    ),
    "exploding-grad": Explanation(
        "a gradient norm jumped far above its recent scale",
        "lower the learning rate, clip gradients (torch.nn.utils.clip_grad_norm_), or "
        "normalize the inputs",
    ),
    "vanishing-grad": Explanation(
        "a gradient norm fell far below its recent scale: that parameter almost stopped learning",
        "check for saturating activations (sigmoid, tanh) or dead ReLUs, the scale of the "
        "inputs and of the loss; normalization layers or residual connections help",
    ),
    "plateau": Explanation(
        "the loss stopped changing relative to its size although the gradient has not "
        "vanished: the steps are too small to make progress",
        "raise the learning rate (or stop decaying it), or use an adaptive optimizer such "
        "as Adam; silence `plateau` in optdbg_config if this is as good as it gets",
    ),
    "scheduler-order": Explanation(
        "the learning-rate scheduler stepped before the optimizer ever did: PyTorch skips "
        "the first value of the schedule",
        "call scheduler.step() after optimizer.step(), never before the first one",
    ),
    "replay-diverged": Explanation(
        "undo/redo rebuilt a state by replaying ops from a checkpoint and got different "
        "numbers than the first time: the scenario is not deterministic (unseeded randomness "
        "outside torch, random and numpy, or state kept outside the parameters)",
        "draw random numbers from torch, random or numpy (optdbg restores their state), or "
        "from a generator stored in the scenario; keep mutable state in tensors",
    ),
}
"""Every pitfall code, in catalogue order: what it means and how to fix it."""

CODES: tuple[str, ...] = tuple(EXPLANATIONS)

ONCE_CODES = frozenset(
    {
        "non-finite",
        "diverging",
        "plateau",
        "exploding-grad",
        "vanishing-grad",
        "param-not-in-graph",
        "param-not-in-optimizer",
        "frozen-param",
        "scheduler-order",
    }
)
"""Codes for conditions: reported when they appear, not on every op while they last."""


# ----------------------------------------------------------------- thresholds


@dataclass(frozen=True)
class Thresholds:
    """Detector thresholds; see the module docstring for what each one means."""

    diverge_rises: int = 5
    diverge_min_rise: float = 0.5
    diverge_factor: float = 10.0
    plateau_patience: int = 50
    plateau_rtol: float = 1e-4
    plateau_grad_ratio: float = 1e-3
    grad_window: int = 10
    grad_warmup: int = 5
    explode_factor: float = 100.0
    vanish_factor: float = 1000.0
    silence: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Thresholds:
        """Thresholds from a scenario's `optdbg_config` (other keys are left to others).

        Raises ValueError naming the key when a value has the wrong type or range.
        """
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in config:
                continue
            value = config[f.name]
            if f.name == "silence":
                values["silence"] = _codes(value)
            elif f.type == "int":
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"{f.name} must be a whole number >= 1, not {value!r}")
                values[f.name] = value
            else:
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ValueError(f"{f.name} must be a number >= 0, not {value!r}")
                values[f.name] = float(value)
        if values.get("grad_warmup", cls.grad_warmup) > values.get("grad_window", cls.grad_window):
            raise ValueError("grad_warmup cannot exceed grad_window")
        return cls(**values)


def _codes(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple | set | frozenset):
        raise ValueError(f"silence must be a list of pitfall codes, not {value!r}")
    unknown = [c for c in value if c not in EXPLANATIONS]
    if unknown:
        raise ValueError(
            f"silence names unknown code(s) {', '.join(map(repr, unknown))}; "
            f"the codes are: {', '.join(CODES)}"
        )
    return frozenset(value)


# ----------------------------------------------------------------- the context


class Clear(NamedTuple):
    """A condition (code, for param) was checked at this op and no longer holds."""

    code: str
    param: str | None = None


class ParamInfo(NamedTuple):
    """One optimizer parameter as the op left it."""

    name: str
    requires_grad: bool
    has_grad: bool
    """.grad is not None."""
    accumulated: int
    """Backward passes summed into .grad since the last zero_grad (0: none)."""
    received: bool = False
    """It received a gradient in this op's (successful) backward."""
    grad_norm: float | None = None
    """L2 norm of .grad, when it changed in this op (backward), else None."""
    grad_nonfinite: str | None = None
    """How .grad is non-finite ("1 of 2 elements inf"), when grad_norm is not finite."""
    recent_norms: tuple[float, ...] = ()
    """Norms of its recent fresh gradients (before this one), oldest first; backward only."""
    moved: bool = False
    """A step in this op updated it (it had a gradient)."""
    value_nonfinite: str | None = None
    """After a step that moved it: how its value is non-finite, or None when finite."""


class Extra(NamedTuple):
    """A scenario tensor requiring grad that the optimizer does not hold, which received a
    gradient in this op's backward."""

    name: str
    shape: tuple[int, ...]
    grad_norm: float


class Context(NamedTuple):
    """What one op did and the state it left, read-only, for the detectors."""

    op: str
    op_index: int
    """Index of the event being built."""
    error: OpError | None
    thresholds: Thresholds
    params: tuple[ParamInfo, ...]
    extras: tuple[Extra, ...]
    lrs: tuple[float, ...]
    maximize: bool
    """Every param group maximizes: the loss is meant to rise."""
    step_count: int
    loss: float | None
    """The latest scalar loss (None before the first forward or when not scalar)."""
    loss_shape: tuple[int, ...] | None = None
    """Forward only: the shape of the loss tensor it returned."""
    loss_requires_grad: bool | None = None
    """Forward only: whether the loss is connected to autograd."""
    losses: Sequence[float] = ()
    """Every scalar loss so far, one per forward (this op's last)."""
    series: Sequence[float] = ()
    """The recent end (max(plateau_patience, diverge_rises) + 1 points) of the loss series
    trends are judged on: every loss when each forward sees the same data, else the mean loss
    of each complete epoch. Objective sign (negated when maximizing)."""
    series_new: bool = False
    """This op added a point to `series`."""
    series_unit: str = "forwards"
    """What one point of `series` is: "forwards" or "epochs (mean loss)"."""
    first: float | None = None
    """First finite loss, objective sign."""
    best: float | None = None
    """Best finite loss before this op, objective sign."""
    grad_total: float | None = None
    """Norm of all fresh gradients of the latest backward (None before any)."""
    grad_total_max: float = 0.0
    """Largest `grad_total` seen."""
    forward_index: int | None = None
    """Event index of the forward that made the current loss."""
    backward_index: int | None = None
    """Event index of the last successful backward on the current loss, before this op."""
    changed_index: int | None = None
    """Backward only: event index of the step that changed the parameters after the current
    loss was computed (a stale graph), else None."""
    last_step_index: int | None = None
    """Event index of the previous successful step (before this op)."""
    backward_since_step: bool = False
    """Backward ran since the previous step (before this op)."""
    last_zero_index: int | None = None
    """Event index of the last zero_grad."""
    scheduler_stepped: tuple[float, float] | None = None
    """The lr (first group) before and after, when the scheduler took its first step during
    this op while the optimizer had never stepped."""
    scheduler_at_load: bool = False
    has_scheduler: bool = False
    """The scenario has an LR scheduler."""
    nonfinite: frozenset[str] = frozenset()
    """What was already reported non-finite before this op ("loss", "t.grad", "t")."""
    """At load: the scenario stepped the scheduler before any optimizer step."""
    text: Callable[[str, str], str] = lambda name, what: "?"
    """text(param, "grad" | "value"): the tensor formatted for a message (computed lazily)."""

    def param(self, name: str) -> ParamInfo | None:
        return next((p for p in self.params if p.name == name), None)


Detector = Callable[[Context], Iterable[Finding | Clear]]


# ----------------------------------------------------------------- the detectors


def _lr(ctx: Context) -> str:
    lrs = sorted(set(ctx.lrs))
    if not lrs:
        return "the learning rate"
    return "lr=" + "/".join(fmt.num(x, 4) for x in lrs)


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
        f"step at op {ctx.op_index} moved nothing: {why} ({names}{more}). "
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
                    f"lower the learning rate ({_lr(ctx)}), or guard log/sqrt/division in "
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
                    f"non-finite: lower the learning rate ({_lr(ctx)}) or clip gradients.",
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
                    f"lower the learning rate ({_lr(ctx)}).",
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
        f"({_lr(ctx)}) is likely too large: lower it (e.g. by 10x).",
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
        f"Raise the learning rate ({_lr(ctx)}){decay} or use an adaptive optimizer such as "
        "Adam; "
        'if the loss cannot go lower, silence it with optdbg_config = {"silence": ["plateau"]}.',
    )


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
                f"({_lr(ctx)}) or clip gradients (torch.nn.utils.clip_grad_norm_).",
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


ANY_OP: frozenset[str] = frozenset()

CATALOGUE: tuple[tuple[frozenset[str], Detector], ...] = (
    (frozenset({"load", "forward"}), frozen_param),
    (ANY_OP, scheduler_order),
    (frozenset({"forward"}), loss_no_grad),
    (frozenset({"step"}), step_without_grad),
    (frozenset({"step"}), stale_grad),
    (frozenset({"backward"}), backward_twice),
    (frozenset({"backward"}), stale_graph),
    (frozenset({"backward"}), param_not_in_graph),
    (frozenset({"backward"}), param_not_in_optimizer),
    (frozenset({"forward", "backward", "step"}), non_finite),
    (frozenset({"backward"}), grad_scale),
    (frozenset({"forward"}), diverging),
    (frozenset({"forward"}), plateau),
)
"""The detectors, each with the ops it looks at (empty: every op), run in this order after
each op (`grad-accumulated` and `loss-not-scalar` are found by the Session's backward and
forward themselves). A parameter made frozen after load is noticed at the next forward."""


_BY_OP: dict[str, tuple[Detector, ...]] = {}


def _for_op(op: str) -> tuple[Detector, ...]:
    """The catalogue's detectors that look at `op`, in catalogue order (cached)."""
    found = _BY_OP.get(op)
    if found is None:
        found = _BY_OP[op] = tuple(d for ops, d in CATALOGUE if not ops or op in ops)
    return found


# ----------------------------------------------------------------- diagnostics


@dataclass(frozen=True)
class Diagnosis:
    """Everything found for one code: what it means, how to fix it, where it happened."""

    code: str
    meaning: str
    fix: str
    occurrences: tuple[tuple[int, Finding], ...]
    """(event index, finding), in the order they happened."""

    @property
    def count(self) -> int:
        return len(self.occurrences)

    @property
    def first(self) -> int:
        return self.occurrences[0][0]

    @property
    def params(self) -> tuple[str, ...]:
        seen = dict.fromkeys(f.param for _, f in self.occurrences if f.param is not None)
        return tuple(seen)


def diagnose(events: Iterable[Event]) -> list[Diagnosis]:
    """All findings of these events grouped by code, in the order codes first appeared."""
    grouped: dict[str, list[tuple[int, Finding]]] = {}
    for event in events:
        for finding in event.warnings:
            grouped.setdefault(finding.code, []).append((event.index, finding))
    unknown = Explanation("", "")
    return [
        Diagnosis(code, *EXPLANATIONS.get(code, unknown), occurrences=tuple(found))
        for code, found in grouped.items()
    ]


# ----------------------------------------------------------------- the runner


def _measure(t: torch.Tensor) -> tuple[float, str | None]:
    """(L2 norm, None) for a finite tensor; (norm, which elements are not finite) otherwise.

    One reduction in the tensor's own dtype (fast): its result is finite only when every
    element is. Only when it is not are the elements counted, and the norm of a finite
    tensor whose squares overflowed is taken again in float64.
    """
    t = t.detach()
    if t.is_complex():
        t = t.abs()
    norm = float(torch.linalg.vector_norm(t))
    if math.isfinite(norm):
        return norm, None
    count = int((~torch.isfinite(t)).sum())
    if count == 0:  # finite values whose squares overflowed
        return float(torch.linalg.vector_norm(t, dtype=torch.float64)), None
    nan = int(torch.isnan(t).sum())
    kinds = [k for k, n in (("NaN", nan), ("Inf", count - nan)) if n]
    return norm, f"{count} of {t.numel()} elements {' and '.join(kinds)}"


def _version_sum(tensors: Iterable[torch.Tensor]) -> int:
    return sum(t._version for t in tensors)


class Detectors:
    """Runs the catalogue after each op of one Session and keeps what they need to remember:
    the conditions already reported, gradient-norm windows, the loss series, op indices."""

    def __init__(
        self,
        loop: LoopState,
        thresholds: Thresholds,
        extras: Sequence[tuple[str, torch.Tensor]] = (),
        full_batch: bool = True,
    ) -> None:
        """`extras`: named tensors requiring grad outside the parameters (for
        param-not-in-optimizer); `full_batch`: every forward sees the same data, so the loss
        series is every loss (else the mean loss of each epoch)."""
        self.thresholds = thresholds
        self.error: str | None = None
        """The last exception a detector raised (detectors never break an op)."""
        self._active: set[tuple[str, str | None]] = set()
        held = {id(t.tensor) for t in loop.tracks}
        self._extras = [(n, t) for n, t in extras if id(t) not in held]
        self._extra_before: dict[str, tuple[int, int] | None] = {}
        self._windows: dict[str, deque[float]] = {}
        th = self.thresholds
        self._series: deque[float] = deque(maxlen=max(th.plateau_patience, th.diverge_rises) + 1)
        """The recent end of the loss series: all that plateau and diverging look at."""
        self._full_batch = full_batch
        self._epoch: int | None = None
        self._epoch_sum = 0.0
        self._epoch_count = 0
        self._first: float | None = None
        self._best: float | None = None
        self._grad_total: float | None = None
        self._grad_total_max = 0.0
        self._forward_index: int | None = None
        self._forward_versions = 0
        self._backward_index: int | None = None
        self._changed_index: int | None = None
        self._last_step_index: int | None = None
        self._backward_since_step = False
        self._last_zero_index: int | None = None
        self._sched_before: tuple[int, bool, float] | None = None
        self._maximize = bool(loop.param_groups) and all(
            bool(g.get("maximize", False)) for g in loop.param_groups
        )
        self.pending: tuple[Finding, ...] = ()
        """Findings at load (frozen-param, scheduler-order), attached to the first event."""
        sched = loop.scheduler
        at_load = (
            sched is not None
            and getattr(sched, "_step_count", 1) > 1
            and not loop.optimizer_stepped
        )
        ctx = Context(
            op="load",
            op_index=0,
            error=None,
            thresholds=self.thresholds,
            params=tuple(self._infos(loop, "load", None)),
            extras=(),
            lrs=(),
            maximize=self._maximize,
            step_count=0,
            loss=None,
            scheduler_at_load=at_load,
        )
        self.pending = tuple(self._evaluate(ctx))

    @classmethod
    def for_scenario(cls, loop: LoopState, scenario: Scenario) -> Detectors:
        """The detectors of a scenario's session: its optdbg_config thresholds, its other
        tensors requiring grad as extras (raises ScenarioError for a bad config)."""
        return cls(
            loop, _thresholds(scenario), grad_tensors(scenario.namespace), _full_batch(scenario)
        )

    # ------------------------------------------------------------- hooks

    def before(self, loop: LoopState, op: str) -> None:
        """Called by the driver just before an op runs."""
        try:
            self._before(loop, op)
        except Exception as e:  # observing must never break an op
            self.error = f"{type(e).__name__}: {e}"

    def after(
        self, loop: LoopState, op: str, error: OpError | None, found: Sequence[Finding]
    ) -> tuple[Finding, ...]:
        """The warnings of the op just performed: the op's own, then the catalogue's."""
        out = list(self.pending) + list(found)
        self.pending = ()
        try:
            if op == "zero_grad" and loop.scheduler is None:
                # nothing to check (only scheduler-order looks at it): just remember it
                if error is None:
                    self._last_zero_index = len(loop.events)
            else:
                ctx = self._context(loop, op, error)
                out += self._evaluate(ctx)
                self._remember(loop, ctx)
        except Exception as e:  # observing must never break an op
            self.error = f"{type(e).__name__}: {e}"
        silence = self.thresholds.silence
        return tuple(f for f in out if f.code not in silence)

    # ------------------------------------------------------------- undo / redo

    _SCALARS = (
        "_epoch",
        "_epoch_sum",
        "_epoch_count",
        "_first",
        "_best",
        "_grad_total",
        "_grad_total_max",
        "_forward_index",
        "_forward_versions",
        "_backward_index",
        "_changed_index",
        "_last_step_index",
        "_backward_since_step",
        "_last_zero_index",
        "pending",
    )

    def history_state(self) -> dict[str, Any]:
        """A detached copy of what the detectors remember (the history protocol: undo
        restores it, then replays ops through the Session, which runs the detectors again)."""
        state = {k: getattr(self, k) for k in self._SCALARS}
        state["_active"] = frozenset(self._active)
        state["_windows"] = {k: tuple(v) for k, v in self._windows.items()}
        state["_series"] = tuple(self._series)
        return state

    def restore_history_state(self, state: dict[str, Any]) -> None:
        for k in self._SCALARS:
            setattr(self, k, state[k])
        self._active = set(state["_active"])
        window = self.thresholds.grad_window
        self._windows = {k: deque(v, maxlen=window) for k, v in state["_windows"].items()}
        self._series = deque(state["_series"], maxlen=self._series.maxlen)

    # ------------------------------------------------------------- internals

    def _evaluate(self, ctx: Context) -> list[Finding]:
        found = []
        for detector in _for_op(ctx.op):
            for item in detector(ctx):
                if isinstance(item, Clear):
                    self._active.discard((item.code, item.param))
                    continue
                key = (item.code, item.param)
                if item.code in ONCE_CODES:
                    if key in self._active:
                        continue
                    self._active.add(key)
                found.append(item)
        return [f for f in found if f.code not in self.thresholds.silence]

    def _before(self, loop: LoopState, op: str) -> None:
        sched = loop.scheduler
        if sched is not None:
            self._sched_before = (
                int(getattr(sched, "_step_count", 0)),
                loop.optimizer_stepped or loop.step_count > 0,
                _first_lr(loop),
            )
        if op == "backward":
            self._extra_before = {
                n: None if t.grad is None else (id(t.grad), t.grad._version)
                for n, t in self._extras
            }

    def _infos(self, loop: LoopState, op: str, error: OpError | None) -> Iterator[ParamInfo]:
        ok = error is None
        received = loop.received if op == "backward" and ok else {}
        moved = op == "step" and ok
        for track in loop.tracks:
            p = track.tensor
            grad = p.grad
            name = track.name
            if grad is None:
                yield ParamInfo(name, p.requires_grad, False, 0)
            elif name in received:
                norm, bad = _measure(grad)
                window = self._windows.get(name)
                yield ParamInfo(
                    name,
                    p.requires_grad,
                    True,
                    track.accumulated,
                    received=True,
                    grad_norm=norm,
                    grad_nonfinite=bad,
                    recent_norms=tuple(window) if window else (),
                )
            elif moved:
                value_nonfinite = _measure(p)[1]
                yield ParamInfo(
                    name,
                    p.requires_grad,
                    True,
                    track.accumulated,
                    moved=True,
                    value_nonfinite=value_nonfinite,
                )
            else:
                yield ParamInfo(name, p.requires_grad, True, track.accumulated)

    def _context(self, loop: LoopState, op: str, error: OpError | None) -> Context:
        index = len(loop.events)
        ok = error is None
        params = tuple(self._infos(loop, op, error))
        extras: list[Extra] = []
        if op == "backward" and ok:
            for name, t in self._extras:
                grad = t.grad
                if grad is None:
                    continue
                if self._extra_before.get(name) != (id(grad), grad._version):
                    extras.append(Extra(name, tuple(t.shape), _measure(grad)[0]))
        loss_shape = loss_requires_grad = None
        series_new = False
        if op == "forward" and ok and loop.loss is not None:
            loss_shape = tuple(loop.loss.shape)
            loss_requires_grad = bool(loop.loss.requires_grad)
            if loop.loss_value is not None:
                series_new = self._extend_series(loop, loop.loss_value)
        changed = None
        if op == "backward" and self._forward_index is not None:
            changed = self._changed_index
        stepped = None
        sched = loop.scheduler
        if sched is not None and self._sched_before is not None:
            count_before, called_before, lr_before = self._sched_before
            count_after = int(getattr(sched, "_step_count", 0))
            if count_after > count_before and not called_before and op != "step":
                stepped = (lr_before, _first_lr(loop))
        return Context(
            op=op,
            op_index=index,
            error=error,
            thresholds=self.thresholds,
            params=params,
            extras=tuple(extras),
            lrs=tuple(float(g["lr"]) for g in loop.param_groups if "lr" in g),
            maximize=self._maximize,
            step_count=loop.step_count,
            loss=loop.loss_value,
            loss_shape=loss_shape,
            loss_requires_grad=loss_requires_grad,
            losses=loop.loss_history,
            series=tuple(self._series) if op == "forward" else (),
            series_new=series_new,
            series_unit="forwards" if self._full_batch else "epochs (mean loss)",
            first=self._first,
            best=self._best,
            grad_total=self._grad_total,
            grad_total_max=self._grad_total_max,
            forward_index=self._forward_index if op != "forward" else index,
            backward_index=self._backward_index,
            changed_index=changed,
            last_step_index=self._last_step_index,
            backward_since_step=self._backward_since_step,
            last_zero_index=self._last_zero_index,
            scheduler_stepped=stepped,
            has_scheduler=sched is not None,
            nonfinite=frozenset(k for c, k in self._active if c == "non-finite" and k)
            if self._active
            else frozenset(),
            text=_texter(loop),
        )

    def _extend_series(self, loop: LoopState, loss: float) -> bool:
        obj = -loss if self._maximize else loss
        if self._full_batch:
            self._series.append(obj)
            return True
        new = False
        if self._epoch is not None and loop.epoch != self._epoch and self._epoch_count:
            self._series.append(self._epoch_sum / self._epoch_count)
            self._epoch_sum, self._epoch_count = 0.0, 0
            new = True
        self._epoch = loop.epoch
        self._epoch_sum += obj
        self._epoch_count += 1
        return new

    def _remember(self, loop: LoopState, ctx: Context) -> None:
        if ctx.error is not None:
            return
        if ctx.op == "forward" and ctx.loss is not None and ctx.loss_shape is not None:
            self._forward_index = ctx.op_index
            self._forward_versions = _version_sum(t.tensor for t in loop.tracks)
            self._backward_index = None
            self._changed_index = None
            if math.isfinite(ctx.loss):
                obj = -ctx.loss if self._maximize else ctx.loss
                if self._first is None:
                    self._first = obj
                self._best = obj if self._best is None else min(self._best, obj)
        elif ctx.op == "forward":
            self._forward_index = ctx.op_index
            self._backward_index = self._changed_index = None
        elif ctx.op == "backward":
            self._backward_index = ctx.op_index
            self._backward_since_step = True
            fresh = [p for p in ctx.params if p.received]
            th = self.thresholds
            for p in fresh:
                norm = p.grad_norm
                if p.accumulated == 1 and norm is not None and math.isfinite(norm) and norm > 0:
                    window = self._windows.setdefault(p.name, deque(maxlen=th.grad_window))
                    window.append(norm)
            if fresh and all(p.accumulated == 1 for p in fresh):
                total = math.sqrt(math.fsum((p.grad_norm or 0.0) ** 2 for p in fresh))
                if math.isfinite(total):
                    self._grad_total = total
                    self._grad_total_max = max(self._grad_total_max, total)
        elif ctx.op == "step":
            self._last_step_index = ctx.op_index
            self._backward_since_step = False
            versions = _version_sum(t.tensor for t in loop.tracks)
            if (
                self._forward_index is not None
                and self._changed_index is None
                and versions != self._forward_versions
            ):
                self._changed_index = ctx.op_index
        elif ctx.op == "zero_grad":
            self._last_zero_index = ctx.op_index


def _first_lr(loop: LoopState) -> float:
    groups = loop.param_groups
    return float(groups[0].get("lr", math.nan)) if groups else math.nan


def _texter(loop: LoopState) -> Callable[[str, str], str]:
    def text(name: str, what: str) -> str:
        track = next((t for t in loop.tracks if t.name == name), None)
        if track is None:
            return "?"
        tensor = track.tensor.grad if what == "grad" else track.tensor
        return fmt.tensor(view(tensor), limit=4)

    return text


def _full_batch(scenario: Scenario) -> bool:
    """Every forward sees the same data: no `data`, or `data` of exactly one batch."""
    if scenario.data is None:
        return True
    try:
        return len(scenario.data) == 1  # type: ignore[arg-type]
    except TypeError:
        return False


def _thresholds(scenario: Scenario) -> Thresholds:
    try:
        return Thresholds.from_config(scenario.config)
    except ValueError as e:
        line = _config_line(scenario.path)
        raise ScenarioError(
            str(scenario.path),
            line,
            f"optdbg_config: {e}",
            "optdbg_config = {...} with detector thresholds (see optdbg.engine.detectors), "
            'e.g. {"plateau_patience": 100, "silence": ["plateau"]}',
            "correct the value, or remove the key to use the default",
            source_line(str(scenario.path), line),
        ) from None


def _config_line(path: Path) -> int | None:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    line = None
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        if any(isinstance(t, ast.Name) and t.id == "optdbg_config" for t in targets):
            line = node.lineno
    return line
