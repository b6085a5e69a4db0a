"""The optimizer's update rule for one parameter, written out with the step's numbers."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from . import fmt

if TYPE_CHECKING:
    from .session import UpdateDetail
    from .snapshot import TensorView


_t = partial(fmt.tensor, limit=6)
"""A term of a rule: a number, or a tensor's first six numbers (fmt.tensor)."""


def _factor(value: Any) -> str:
    """A term after `·`: in parentheses when it starts with a minus (`1e-06·(-22536.4)`)."""
    text = _t(value)
    return f"({text})" if text.startswith("-") else text


def describe(d: UpdateDetail) -> list[str]:
    """Lines showing the rule and its terms: the formula first, then the numbers."""
    rule = _RULES.get(d.optimizer, _generic)
    return rule(d)


def _sgd(d: UpdateDetail) -> list[str]:
    h, p = d.hyper, d.name
    lr, mom = h.get("lr"), h.get("momentum", 0) or 0
    wd, damp = h.get("weight_decay", 0) or 0, h.get("dampening", 0) or 0
    sign = "+" if h.get("maximize") else "−"
    lines = []
    g = "grad"
    if wd:
        lines.append(f"g = grad + weight_decay·{p} = grad + {fmt.num(wd)}·{p}")
        g = "g"
    if mom:
        buf = d.state_after.get("momentum_buffer")
        first = not d.state_before.get("momentum_buffer")
        rule = f"{g}   (first step)" if first else f"μ·buf + (1−{fmt.num(damp)})·{g}"
        lines.append(f"buf ← {rule}")
        lines.append(f"    μ = {fmt.num(mom)}, buf = {_t(buf)}")
        if h.get("nesterov"):
            lines.append(f"{p} ← {p} {sign} lr·({g} + μ·buf)")
        else:
            lines.append(f"{p} ← {p} {sign} lr·buf")
        lines.append(f"  = {_t(d.before)} {sign} {fmt.num(lr)}·[…] = {_t(d.after)}")
    else:
        lines.append(f"{p} ← {p} {sign} lr·{g}")
        lines.append(f"  = {_t(d.before)} {sign} {fmt.num(lr)}·{_factor(d.grad)}")
        lines.append(f"  = {_t(d.after)}")
    return lines + _delta(d)


def _adam(d: UpdateDetail) -> list[str]:
    h, p, s = d.hyper, d.name, d.state_after
    lr, eps = h.get("lr"), h.get("eps")
    b1, b2 = h.get("betas", (0.9, 0.999))
    step = s.get("step")
    n = _as_number(step)
    wd = h.get("weight_decay", 0) or 0
    lines = [f"step t = {fmt.num(n)}   lr = {fmt.num(lr)}   β1 = {b1}   β2 = {b2}   ε = {eps}"]
    if wd and d.optimizer == "AdamW":
        lines.append(f"{p} ← {p}·(1 − lr·{fmt.num(wd)})   (decoupled weight decay)")
    elif wd:
        lines.append(f"g = grad + {fmt.num(wd)}·{p}   (L2 weight decay)")
    lines += [
        f"m ← β1·m + (1−β1)·g   m = {_t(s.get('exp_avg'))}",
        f"v ← β2·v + (1−β2)·g²  v = {_t(s.get('exp_avg_sq'))}",
    ]
    if n:
        lines.append(
            f"m̂ = m/(1−β1^t) = m/{fmt.num(1 - b1**n)}   v̂ = v/(1−β2^t) = v/{fmt.num(1 - b2**n)}"
        )
    sign = "+" if h.get("maximize") else "−"
    lines.append(f"{p} ← {p} {sign} lr·m̂/(√v̂ + ε)")
    lines.append(f"  = {_t(d.before)} → {_t(d.after)}")
    return lines + _delta(d)


def _rmsprop(d: UpdateDetail) -> list[str]:
    h, p, s = d.hyper, d.name, d.state_after
    lines = [
        f"lr = {fmt.num(h.get('lr'))}   α = {h.get('alpha')}   ε = {h.get('eps')}",
        f"v ← α·v + (1−α)·grad²   v = {_t(s.get('square_avg'))}",
    ]
    if h.get("centered"):
        lines.append(f"a ← α·a + (1−α)·grad   a = {_t(s.get('grad_avg'))}   (centered: v − a²)")
    if h.get("momentum"):
        lines.append(f"buf ← μ·buf + grad/(√v + ε)   buf = {_t(s.get('momentum_buffer'))}")
        lines.append(f"{p} ← {p} − lr·buf")
    else:
        lines.append(f"{p} ← {p} − lr·grad/(√v + ε)")
    lines.append(f"  = {_t(d.before)} → {_t(d.after)}")
    return lines + _delta(d)


SOURCE_LINES = 12
"""The manual form shows at most this many lines of step()."""


def _manual(d: UpdateDetail) -> list[str]:
    """The scenario's own step(): its source, then this parameter's numbers (the plain rule
    `p -= lr * p.grad` written out with them when step() uses it)."""
    lines = list(d.source[:SOURCE_LINES])
    if len(d.source) > SOURCE_LINES:
        lines.append(f"  … ({len(d.source) - SOURCE_LINES} more lines)")
    if d.rule is not None:
        statement, coefficient, value = d.rule
        lr = fmt.num(value) if value is not None else coefficient
        lines += [
            f"{d.name} ← {d.name} − {coefficient}·{d.name}.grad   ({statement})",
            f"  = {_t(d.before)} − {lr}·{_factor(d.grad)}",
            f"  = {_t(d.after)}",
        ]
    else:
        lines.append(f"step(): {d.name} {_t(d.before)} → {_t(d.after)}")
    return lines + _delta(d)


def _generic(d: UpdateDetail) -> list[str]:
    lines = [f"{d.optimizer}: {d.name} {_t(d.before)} → {_t(d.after)}"]
    lines += [f"  {k} = {_t(v)}" for k, v in d.state_after.items()]
    return lines + _delta(d)


def _delta(d: UpdateDetail) -> list[str]:
    return [f"Δ{d.name} = {_t(d.delta)}   (grad used: {_t(d.grad)})"]


def _as_number(v: Any) -> float:
    if isinstance(v, int | float):
        return float(v)
    view: TensorView | None = v
    if view is not None and view.values is not None and not isinstance(view.values, list):
        return float(view.values)
    return 0.0


_RULES = {"SGD": _sgd, "Adam": _adam, "AdamW": _adam, "RMSprop": _rmsprop, "step()": _manual}
