"""The updates: clipping in the wrong place or always binding, update-to-weight ratios far
from ~1e-3."""

from __future__ import annotations

from collections.abc import Iterator

from .. import fmt
from ..events import Finding
from .context import Clear, Context, lr_text

_WHERE = {
    "after-step": "after the update (optimizer.step() already used the unclipped gradient; "
    "zero_grad then discards the clipped one)",
    "before-backward": "before backward (it clipped the gradient of an earlier backward, "
    "which backward then adds to or zero_grad discards)",
}


def clip_order(ctx: Context) -> Iterator[Finding | Clear]:
    """Gradients rewritten in place where it cannot matter; clipping that binds on most steps."""
    for r in ctx.grad_rewrites:
        if r.when in _WHERE:
            names = ", ".join(r.params[:3]) + (" ..." if len(r.params) > 3 else "")
            yield Finding(
                "clip-order",
                f"the gradients of {names} were modified in place {_WHERE[r.when]}, at op "
                f"{ctx.op_index} ({ctx.op}). Clip between backward and step: "
                "loss.backward(); torch.nn.utils.clip_grad_norm_(...); optimizer.step().",
            )
    recent = ctx.clip_recent
    if ctx.op != "step" or not recent:
        return
    binding = sum(recent)
    if binding < ctx.thresholds.clip_binding * len(recent):
        yield Clear("clip-order", "binding")
        return
    yield Finding(
        "clip-order",
        f"gradient clipping shrank the gradient on {binding} of the last {len(recent)} steps "
        f"(up to the step at op {ctx.op_index}): max_norm binds nearly always, so it acts as "
        f"a smaller learning rate ({lr_text(ctx)}). Raise max_norm above the typical gradient "
        "norm, or lower the learning rate instead.",
        param="binding",
    )


def update_ratio(ctx: Context) -> Iterator[Finding | Clear]:
    """|update| / |weight| above or below its bounds for many consecutive steps."""
    if ctx.op != "step" or ctx.error is not None:
        return
    th = ctx.thresholds
    converged = (
        ctx.grad_total is None
        or ctx.grad_total_max <= 0
        or ctx.grad_total < th.plateau_grad_ratio * ctx.grad_total_max
    )
    for p in ctx.params:
        if p.update_ratio is None:
            continue
        high = p.ratio_streak >= th.update_ratio_patience
        low = -p.ratio_streak >= th.update_ratio_patience and not converged
        if not (high or low):
            yield Clear("update-ratio", p.name)
            continue
        bound = th.update_ratio_high if high else th.update_ratio_low
        what, fix = ("above", "lower") if high else ("below", "raise")
        yield Finding(
            "update-ratio",
            f"{p.name}: the step at op {ctx.op_index} changed it by "
            f"{fmt.num(p.update_ratio, 3)} of its norm, {what} {fmt.num(bound)} for "
            f"{abs(p.ratio_streak)} steps in a row (about 1e-3 is healthy): the learning rate "
            f"({lr_text(ctx)}) is too {'high' if high else 'low'} for it. {fix.capitalize()} "
            "it (for this parameter's group if only some layers are off).",
            param=p.name,
        )
