"""The loss function: probabilities where logits belong, shapes that broadcast, a first loss
far from ln(C), a loss that stays at chance."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator

from .. import fmt
from ..events import Finding
from .context import Clear, Context, lr_text


def softmax_before_ce(ctx: Context) -> Iterator[Finding | Clear]:
    """Softmax/LogSoftmax feeding CrossEntropyLoss, or Softmax feeding NLLLoss."""
    facts = ctx.loss_facts
    if ctx.op != "forward" or ctx.error is not None or facts is None:
        return
    if facts.probs_into is None:
        yield Clear("softmax-before-ce")
        return
    yield Finding(
        "softmax-before-ce",
        f"the loss of the forward at op {ctx.op_index} applies {facts.probs_into}: the "
        "loss sees squashed values, its gradients shrink and the loss cannot approach 0. "
        "Return the raw logits from the model and pass them to CrossEntropyLoss (or use "
        "log_softmax with NLLLoss).",
    )


def loss_broadcast(ctx: Context) -> Iterator[Finding | Clear]:
    """MSE/L1-like loss whose input was broadcast against a target of another shape."""
    facts = ctx.loss_facts
    if ctx.op != "forward" or ctx.error is not None or facts is None:
        return
    if facts.broadcast is None:
        yield Clear("loss-broadcast")
        return
    loss, before, after = facts.broadcast
    yield Finding(
        "loss-broadcast",
        f"{loss} at the forward at op {ctx.op_index} broadcast its input of shape "
        f"{fmt.shape(before)} against the target to {fmt.shape(after)}: it compares every "
        "prediction with every target, and the loss converges to the wrong fit. Give input "
        "and target the same shape (output.squeeze(-1), or target.unsqueeze(-1)).",
    )


def init_loss_mismatch(ctx: Context) -> Iterator[Finding]:
    """The first classification loss far above ln(C)."""
    facts = ctx.loss_facts
    if ctx.op != "forward" or not ctx.first_forward or facts is None or facts.chance is None:
        return
    if ctx.loss is None or not math.isfinite(ctx.loss):
        return
    factor = ctx.thresholds.init_loss_factor
    if ctx.loss <= factor * facts.chance:
        return
    c = facts.classes
    yield Finding(
        "init-loss-mismatch",
        f"the first loss ({fmt.num(ctx.loss, 4)}, forward at op {ctx.op_index}) is "
        f"{fmt.num(ctx.loss / facts.chance, 3)}x ln({c}) = {fmt.num(facts.chance, 4)}, the "
        f"loss of a uniform guess over {c} classes: the model starts confidently wrong. "
        "Normalize the inputs, initialize the last layer small, and check that the labels "
        "are class indices matching the outputs.",
    )


def loss_at_chance(ctx: Context) -> Iterator[Finding | Clear]:
    """The classification loss stays at ln(C) without falling."""
    window = ctx.chance_window
    facts = ctx.loss_facts
    if ctx.op != "forward" or ctx.error is not None or not window or facts is None:
        return
    th = ctx.thresholds
    half = len(window) // 2
    fall = statistics.fmean(window[:half]) - statistics.fmean(window[half:])
    near = all(abs(r - 1) <= th.chance_rtol for r in window)
    if not near or fall >= th.chance_progress:
        yield Clear("loss-at-chance")
        return
    yield Finding(
        "loss-at-chance",
        f"the loss has stayed within {100 * th.chance_rtol:.3g}% of ln({facts.classes}) = "
        f"{fmt.num(math.log(facts.classes or 2), 4)} per sample (a uniform guess) for the "
        f"last {len(window)} forwards, up to the one at op {ctx.op_index} (now "
        f"{fmt.num(ctx.loss or 0.0, 4)}): the model learns nothing from the labels. Check that "
        "inputs and labels are paired (one shuffle, not two), that gradients reach the model, "
        f"and the learning rate ({lr_text(ctx)}).",
    )
