"""The catalogue of pitfall codes: what each means and how to fix it."""

from __future__ import annotations

from typing import NamedTuple


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
