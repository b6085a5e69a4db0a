"""Compact, readable number formatting shared by the CLI trace, messages and the UI."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .snapshot import TensorView


def num(x: float | int | bool | None, digits: int = 6) -> str:
    if x is None:
        return "None"
    if isinstance(x, bool | int):
        return str(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    text = f"{x:.{digits}g}"
    return "0" if text == "-0" else text


def nested(values: Any, digits: int = 6) -> str:
    """Numbers in (nested) lists and tuples; anything else as its repr."""
    if isinstance(values, list):
        return "[" + ", ".join(nested(v, digits) for v in values) + "]"
    if isinstance(values, tuple):
        inner = ", ".join(nested(v, digits) for v in values)
        return f"({inner},)" if len(values) == 1 else f"({inner})"
    if values is None or isinstance(values, bool | int | float):
        return num(values, digits)
    return str(values)


def tensor(v: TensorView | None, digits: int = 6, limit: int = 8) -> str:
    """A tensor in one line: its numbers when small, else shape and summary."""
    if v is None:
        return "None"
    if v.summary is None:
        flat = v.flat()
        if len(flat) <= limit:
            return nested(v.values, digits)
        return f"{shape(v.shape)} [{', '.join(num(x, 4) for x in flat[:limit])}, …]"
    s = v.summary
    return f"{shape(v.shape)} mean {num(s.mean, 4)} std {num(s.std, 4)} ‖·‖ {num(s.norm, 4)}"


def shape(dims: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in dims) + ")" if dims else "scalar"
