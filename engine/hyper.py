"""Live hyperparameters: edit a param group's value exactly as plain PyTorch assignment would.

`checked` validates a value, `assign` does `optimizer.param_groups[group][key] = value`
(nothing else: the next step reads it, as in a plain loop) and `parse_value` reads a typed
one. The Session performs the edit as an op "set" (`Session.set_hyper`), so it shows in the
event log and is undone and redone like any op.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import fmt

if TYPE_CHECKING:
    import torch

NON_NEGATIVE = frozenset(
    {
        "lr",
        "momentum",
        "dampening",
        "weight_decay",
        "eps",
        "alpha",
        "lr_decay",
        "initial_accumulator_value",
        "rho",
        "lambd",
        "t0",
        "momentum_decay",
        "max_iter",
        "history_size",
    }
)
"""Hyperparameters that are a single finite number >= 0."""
FRACTION_PAIRS = frozenset({"betas"})
"""A pair of numbers, each in [0, 1)."""
POSITIVE_PAIRS = frozenset({"etas", "step_sizes"})
"""A pair of finite numbers > 0."""
FLAGS = frozenset(
    {
        "nesterov",
        "amsgrad",
        "maximize",
        "centered",
        "capturable",
        "differentiable",
        "decoupled_weight_decay",
    }
)
OPTIONAL_FLAGS = frozenset({"foreach", "fused"})
"""True, False or None."""


class HyperError(ValueError):
    """A hyperparameter edit that was refused; the message says why and what is expected."""


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


_AS_TYPED = object()
"""`parse_value`'s default: no current value, the literal as typed."""
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def parse_value(text: str, like: Any = _AS_TYPED) -> Any:
    """A value typed by the user: a Python literal (0.05, 1e-3, (0.9, 0.999), True).

    With `like` (the value it replaces, as in the hyperparameter dialog), it is read as a
    value of that kind: true/false (yes/no, on/off, 1/0) for a flag, an int for an int when
    whole, a float for a float, floats separated by commas or spaces for a tuple or list
    (`0.9, 0.999`), and nan or inf for a number (which `validate` then refuses, saying why).
    """
    text = text.strip()
    if isinstance(like, bool):
        if text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise HyperError(f"expected true or false, got {text!r}")
    try:
        value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        value = _AS_TYPED
    if like is _AS_TYPED:
        if value is _AS_TYPED:
            raise HyperError(
                f"cannot read {text!r} as a value: type a number (0.05, 1e-3), a pair "
                "((0.9, 0.999)) or True/False"
            )
        return value
    return _like(text, value, like)


def _like(text: str, value: Any, like: Any) -> Any:
    """`text` (read as the literal `value`, or _AS_TYPED) as a value of `like`'s kind."""
    if isinstance(like, tuple | list):
        items = value if isinstance(value, tuple | list) else _words(text)
        if not all(_is_number(v) for v in items):
            raise HyperError(f"cannot read {text!r} as numbers: type them as in 0.9, 0.999")
        return type(like)(float(v) for v in items)
    if _is_number(like):
        if not _is_number(value):
            value = _number(text)
        if isinstance(like, float):
            return float(value)
        return int(value) if isinstance(value, float) and value.is_integer() else value
    if value is _AS_TYPED:
        raise HyperError(f"cannot read {text!r} as a value like {like!r}")
    return value


def _words(text: str) -> list[Any]:
    """`0.9, 0.999` or `(0.9 0.999)`: the numbers, or [text] when one is not a number."""
    parts = [p for p in text.strip("()[] ").replace(",", " ").split() if p]
    try:
        return [float(p) for p in parts]
    except ValueError:
        return [text]


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise HyperError(
            f"cannot read {text!r} as a number: type one such as 0.05 or 1e-3"
        ) from None


def validate(group: dict[str, Any], key: str, value: Any) -> Any:
    """The value to assign, or HyperError saying why it is refused."""
    import torch  # here: the TUI reads typed values (parse_value) before torch is imported

    if key == "params":
        raise HyperError("`params` is not a hyperparameter: the parameters cannot be edited")
    if key not in group:
        known = ", ".join(k for k in group if k != "params")
        raise HyperError(f"this param group has no {key!r}; it has: {known}")
    if isinstance(value, str):
        value = parse_value(value)
    current = group[key]
    if key in NON_NEGATIVE or (
        key not in FLAGS | OPTIONAL_FLAGS | FRACTION_PAIRS | POSITIVE_PAIRS
        and (_is_number(current) or isinstance(current, torch.Tensor))
    ):
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            number = value.item()
        elif _is_number(value):
            number = value
        else:
            raise HyperError(f"{key} must be a number, not {_describe(value)}")
        if not math.isfinite(number):
            raise HyperError(f"{key} must be a finite number, not {number}")
        if key in NON_NEGATIVE and number < 0:
            raise HyperError(f"{key} must be >= 0, not {number}")
        return value
    if key in FRACTION_PAIRS or key in POSITIVE_PAIRS:
        if not (isinstance(value, tuple | list) and len(value) == 2):
            raise HyperError(f"{key} must be a pair of numbers, e.g. (0.9, 0.999)")
        if not all(_is_number(v) and math.isfinite(v) for v in value):
            raise HyperError(f"{key} must be a pair of finite numbers, not {value!r}")
        if key in FRACTION_PAIRS and not all(0 <= v < 1 for v in value):
            raise HyperError(f"each of {key} must be in [0, 1), not {value!r}")
        if key in POSITIVE_PAIRS and not all(v > 0 for v in value):
            raise HyperError(f"each of {key} must be > 0, not {value!r}")
        return tuple(value)
    if key in FLAGS or key in OPTIONAL_FLAGS or isinstance(current, bool):
        allowed = (True, False, None) if key in OPTIONAL_FLAGS else (True, False)
        if not any(value is a for a in allowed):
            raise HyperError(f"{key} must be {' or '.join(map(str, allowed))}, not {value!r}")
        return value
    if isinstance(current, tuple | list):
        if not (isinstance(value, tuple | list) and len(value) == len(current)):
            raise HyperError(f"{key} must be a sequence of {len(current)} values like {current!r}")
        return type(current)(value)
    if type(value) is not type(current):
        raise HyperError(
            f"{key} is a {type(current).__name__} ({current!r}); "
            f"a {type(value).__name__} cannot replace it"
        )
    return value


def _describe(value: Any) -> str:
    return f"{value!r} (a {type(value).__name__})"


def assign(optimizer: torch.optim.Optimizer, group: int, key: str, value: Any) -> None:
    """Exactly what plain PyTorch does: `optimizer.param_groups[group][key] = value`."""
    optimizer.param_groups[group][key] = value


def checked(groups: Sequence[dict[str, Any]], group: int, key: str, value: Any) -> Any:
    """The value to assign to `groups[group][key]`, or HyperError saying why it is refused
    (no such group, or a value `validate` refuses)."""
    if isinstance(group, bool) or not isinstance(group, int) or not 0 <= group < len(groups):
        raise HyperError(
            f"no param group {group!r}: the optimizer has {len(groups)} "
            f"(0{f' to {len(groups) - 1}' if len(groups) > 1 else ''})"
        )
    return validate(groups[group], key, value)


def edit_summary(groups: Sequence[dict[str, Any]], group: int, key: str, old: Any, new: Any) -> str:
    """The "set" op's summary line: `lr: 0.1 → 0.05` (`group 1 lr: …` with several groups)."""
    where = f"group {group} " if len(groups) > 1 else ""
    return f"{where}{key}: {fmt.value(old)} → {fmt.value(new)}"
