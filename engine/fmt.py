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


TEXT_LIMIT = 2000
"""Characters of a message from a scenario shown or written (the rest is cut, and counted)."""
LINE_LIMIT = 200
"""Characters of a source line shown in a load error."""

_BIDI = frozenset(range(0x202A, 0x202F)) | frozenset(range(0x2066, 0x206A))


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def _unsafe(ch: str, newlines: bool) -> bool:
    code = ord(ch)
    if ch == "\t" or (newlines and ch == "\n"):
        return False
    return code < 0x20 or 0x7F <= code < 0xA0 or 0xD800 <= code < 0xE000 or code in _BIDI


def text(value: object, limit: int | None = TEXT_LIMIT, newlines: bool = True) -> str:
    """Text from a scenario, safe to print or write: control characters (escape sequences,
    carriage returns, bidi overrides, lone surrogates) become visible escapes such as
    `\\x1b`, and past `limit` characters the rest is cut, saying how much. Idempotent."""
    s = value if isinstance(value, str) else str(value)
    if limit is not None and len(s) > limit + 64:  # the margin keeps it idempotent
        s = f"{s[:limit]}… ({len(s) - limit} more characters)"
    if any(_unsafe(ch, newlines) for ch in s):
        s = "".join(_escape(ch) if _unsafe(ch, newlines) else ch for ch in s)
    return s


def name(value: object) -> str:
    """A name from a scenario (a parameter, a global, a type) on one line, escaped."""
    return text(value, limit=None, newlines=False)


def plural(n: int, word: str, words: str | None = None) -> str:
    """`1 iteration`, `2 iterations` (`words` for an irregular plural)."""
    return f"{n} {word if n == 1 else (words or word + 's')}"
