"""Detector thresholds, configurable per scenario with `optdbg_config` (see the package
docstring for the table)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .catalogue import CODES, EXPLANATIONS


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
    explode_rel: float = 0.1
    explode_loss_rise: float = 0.5
    vanish_progress: float = 0.5
    init_loss_factor: float = 3.0
    chance_patience: int = 100
    chance_rtol: float = 0.01
    chance_progress: float = 2e-3
    clip_window: int = 20
    clip_binding: float = 0.9
    update_ratio_high: float = 0.1
    update_ratio_low: float = 1e-6
    update_ratio_patience: int = 20
    dead_relu_fraction: float = 0.9
    lr_zero_ratio: float = 1e-3
    lr_zero_patience: int = 20
    lr_zero_share: float = 0.1
    lr_rise_factor: float = 10.0
    overfit_rises: int = 3
    ddp_grad_rtol: float = 0.0
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


HELP: dict[str, str] = {
    "diverge_rises": "`diverging` when the loss rose on this many consecutive points of the "
    "loss series (forwards when every forward sees the same data; epoch means for "
    "mini-batches) ...",
    "diverge_min_rise": "... and the total rise is at least this fraction of the loss where "
    "the rises began",
    "diverge_factor": "`diverging` also when a loss exceeds its best by this many times "
    "max(|first|, |best|, first - best)",
    "plateau_patience": "`plateau` compares the loss series now with this many points ago ...",
    "plateau_rtol": "... and fires when it moved by less than this fraction of its size ...",
    "plateau_grad_ratio": "... while the gradient norm is still at least this fraction of "
    "the largest seen (a vanished gradient means converged)",
    "grad_window": "exploding/vanishing compare a gradient norm with the median of this many "
    "recent norms of the same parameter ...",
    "grad_warmup": "... once at least this many are known",
    "explode_factor": "`exploding-grad`: norm above this many times the median ...",
    "explode_rel": "... and lr x norm at least this fraction of the norm of all the "
    "parameters (lr 1 without an optimizer's lr): a jump among the tiny gradients of a "
    "parameter converging to 0 is not an explosion",
    "explode_loss_rise": "... and the loss this many times its scale (max(|first|, |best|, "
    "first - best)) above its best: a spike the loss does not feel, as RMSprop's brief "
    "oscillations near a minimum, is not an explosion",
    "vanish_factor": "`vanishing-grad`: norm below the median / this factor (exact zeros are "
    "not counted) ...",
    "vanish_progress": "... while the loss has fallen by less than this fraction of its "
    "first value (shrinking gradients of a converged fit are not vanishing)",
    "init_loss_factor": "`init-loss-mismatch`: the first classification loss above this many "
    "times ln(C) per sample",
    "chance_patience": "`loss-at-chance`: over this many forwards ...",
    "chance_rtol": "... every loss within this fraction of ln(C) per sample ...",
    "chance_progress": "... and the second half's mean below the first half's by less than "
    "this fraction of ln(C) (the FashionMNIST tutorial, slow but learning, falls about 0.25% "
    "of ln(10) per 100 batches while still within 1% of it)",
    "clip_window": "`clip-order`: clipping judged over this many recent steps ...",
    "clip_binding": "... binding (shrinking the gradient) on at least this fraction of them",
    "update_ratio_high": "`update-ratio`: |update| / |weight| above this ...",
    "update_ratio_low": "... or below this (while the gradient norm is at least "
    "plateau_grad_ratio of its largest) ...",
    "update_ratio_patience": "... on this many consecutive steps",
    "dead_relu_fraction": "`dead-relu`: this fraction of a ReLU layer's units (or more) "
    "output zero for every input of the batch",
    "lr_zero_ratio": "`lr-schedule-odd`: an lr below this fraction of its start counts as "
    "about zero ...",
    "lr_zero_patience": "... fires after this many steps at about zero ...",
    "lr_zero_share": "... that are also at least this fraction of all the steps so far",
    "lr_rise_factor": "`lr-schedule-odd` also when the lr rises above this many times its "
    "start (or the scheduler's max_lr)",
    "overfit_rises": "`overfitting` when the evaluation loss rose at this many evaluations "
    "in a row while the mean training loss between them fell",
    "ddp_grad_rtol": "`ddp-grads-differ`: 0 compares the ranks' gradients at each step bit "
    "for bit (after DDP's all-reduce every rank holds the same bits); above 0, their norms "
    "may differ by this relative tolerance",
    "silence": "codes never reported for this scenario",
}
"""What each threshold means (the package docstring and the README's table point here)."""
