"""What the detectors receive: the facts of one op, read-only."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, Protocol

from .. import fmt
from ..events import Finding, OpError
from ..snapshot import TensorView
from .thresholds import Thresholds


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
    added: TensorView | float | None = None
    """Backward only, when .grad already held a gradient: what this backward added to it (the
    gradient itself up to 8 elements, else its L2 norm), as the driver saw it arrive."""
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
    update_ratio: float | None = None
    """After a step that moved a weight (2-d or more): |after - before| / |before|."""
    ratio_streak: int = 0
    """Consecutive steps (this one included) its update ratio was above update_ratio_high
    (positive) or below update_ratio_low (negative)."""


class Extra(NamedTuple):
    """A scenario tensor requiring grad that the optimizer does not hold, which received a
    gradient in this op's backward."""

    name: str
    shape: tuple[int, ...]
    grad_norm: float


class LossFacts(NamedTuple):
    """What the loss's graph says about the loss function (read at forward, before backward
    frees the saved tensors)."""

    chance: float | None = None
    """When the loss is exactly a CrossEntropy/NLL loss: its value for a uniform guess (ln C
    per sample, times the sample count for reduction="sum")."""
    classes: int | None = None
    probs_into: str | None = None
    """What feeds the classification loss where logits (or log-probabilities) belong, e.g.
    "Softmax into CrossEntropyLoss"."""
    broadcast: tuple[str, tuple[int, ...], tuple[int, ...]] | None = None
    """(loss, input shape, the shape it was broadcast to) for a regression loss."""


class Relu(NamedTuple):
    """One nn.ReLU layer at this forward."""

    name: str
    dead: int
    """Units that output zero for every input of the batch (when fewer than
    dead_relu_fraction of them may: an upper bound, the units at zero for the first input)."""
    units: int
    batch: int


class OptimizerStep(NamedTuple):
    """One optimizer.step() during the op."""

    name: str
    """Its class name."""
    serial: int
    """Which optimizer object (1 for the first one seen, 2 for the next, ...)."""
    fresh: bool
    """Its state was empty for every parameter it stepped."""
    stateful: bool
    """It holds per-parameter state after the step (Adam's moments, momentum buffers)."""
    previous: str | None = None
    """When fresh: what had stepped these parameters with state before ("another Adam"), or
    "reset" when it is the same optimizer whose state was emptied."""
    steps: int = 1
    """Fresh optimizers seen so far over these parameters (this one included)."""


class GradRewrite(NamedTuple):
    """Gradients changed in place outside backward (what clipping does)."""

    when: str
    """"before-backward" (during forward, or after zero_grad), "before-step" (between
    backward and the update: the right place) or "after-step"."""
    params: tuple[str, ...]
    ratio: float | None = None
    """Gradient norm after / before (all rewritten parameters together), when measured."""


class Inplace(NamedTuple):
    """A backward refused because an in-place op modified a tensor saved for it."""

    tensor: str
    """PyTorch's description: "[torch.FloatTensor [4, 3]], which is output 0 of ReluBackward0"."""
    version: str
    """"is at version 1; expected version 0"."""
    sites: tuple[tuple[str, str], ...]
    """(file:line, source text) of the in-place ops found in the forward's code."""


class Texter(Protocol):
    def __call__(self, name: str, what: str, limit: int = 4) -> str:
        """A parameter's "grad" or "value" formatted for a message (up to `limit` numbers)."""
        ...


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
    scalar_loss: bool = False
    """The driver calls backward() without a gradient argument, so the loss must be one
    number (the Session, unless the scenario gives backward_gradient)."""
    accumulation: int | None = None
    """Backward passes the loop sums into .grad on purpose between two zero_grads (from the
    Session's op pattern); None when the driver judges accumulation itself (the tracer)."""
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
    eval_modules: tuple[str, ...] = ()
    """Forward with a loss requiring grad: Dropout/norm modules in eval mode."""
    loss_facts: LossFacts | None = None
    """Forward: what the loss's graph says about the loss function."""
    first_forward: bool = False
    """This is the first successful forward."""
    chance_window: tuple[float, ...] = ()
    """Forward: loss / chance of the last chance_patience forwards, once that many are known."""
    relus: tuple[Relu, ...] = ()
    """Forward: each nn.ReLU layer's dead units on this batch."""
    retained: tuple[tuple[str, str], ...] = ()
    """Forward: (global name, how) of globals keeping the graphs of several forwards."""
    replaced: tuple[tuple[str, str], ...] = ()
    """(parameter, what its global name holds now) for parameters rebound to another tensor."""
    optimizer_steps: tuple[OptimizerStep, ...] = ()
    """Step: every optimizer.step() the op ran."""
    grad_rewrites: tuple[GradRewrite, ...] = ()
    """Gradients changed in place during this op (or since the previous op) outside backward."""
    clip_recent: tuple[bool, ...] = ()
    """Step with clipping before it: whether clipping shrank the gradient, for the last
    clip_window clipped steps, once that many are known."""
    inplace: Inplace | None = None
    """Backward refused for a saved tensor modified in place."""
    decay_1d: tuple[tuple[int, float, tuple[str, ...]], ...] = ()
    """Load: (group, weight_decay, 1-d parameters) of groups decaying 1-d parameters."""
    lr_ref: tuple[float, ...] = ()
    """Step: each group's reference lr (the lr a `set` op gave it last, else its initial_lr
    or max_lr, else the first lr seen)."""
    hyper_set: tuple[tuple[int, str, Any], ...] = ()
    """Set only: (group, key, new value) of each hyperparameter the op changed."""
    lr_zero_steps: int = 0
    """Step: consecutive steps (this one included) at which some group's lr was below
    lr_zero_ratio of its reference."""
    text: Texter = lambda name, what, limit=4: "?"
    params_norm: Callable[[], float] = lambda: 0.0
    """The L2 norm of all the parameters together, now (computed when a rule asks)."""
    """text(param, "grad" | "value"): the tensor formatted for a message (computed lazily)."""
    evals: tuple[tuple[float, float | None], ...] = ()
    """Evaluate only: (evaluation loss, mean training loss since the previous evaluation)
    per evaluation so far, oldest first, this one last."""

    def param(self, name: str) -> ParamInfo | None:
        return next((p for p in self.params if p.name == name), None)


Detector = Callable[[Context], Iterable[Finding | Clear]]


def lr_text(ctx: Context) -> str:
    lrs = sorted(set(ctx.lrs))
    if not lrs:
        return "the learning rate"
    return "lr=" + "/".join(fmt.num(x, 4) for x in lrs)
