"""The one formatter of values: numbers, tensors, hyperparameters and scenario text, for the
CLI trace, op summaries, warnings, exported graphs and the UI alike."""

from __future__ import annotations

import math
import re
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

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


def eng(x: float, digits: int = 3) -> str:
    """A number in engineering notation, short at any magnitude (an axis label): plain where
    `digits` digits show it without an exponent (`0.25`, `120`), else a mantissa below 1000
    and an exponent that is a multiple of 3 (`25e36`, `1.5e-30`, `12.3e3`)."""
    plain = num(x, digits)
    if not math.isfinite(x) or x == 0 or ("e" not in plain and abs(x) >= 1e-3):
        return plain
    exponent = 3 * math.floor(math.log10(abs(x)) / 3)
    mantissa = float(f"{x / 10.0**exponent:.{digits}g}")
    if abs(mantissa) >= 1000:  # rounded up into the next group
        mantissa, exponent = mantissa / 1000, exponent + 3
    return f"{mantissa:.{digits}g}e{exponent}"


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


def tensor(
    v: TensorView | float | None,
    digits: int = 6,
    limit: int = 8,
    *,
    with_shape: bool = True,
    ascii: bool = False,
) -> str:
    """A tensor in one line: its numbers when at most `limit`, else (its shape and) the first
    `limit` or a summary; a plain number as itself. `ascii` for DOT files, whose fonts may
    lack … and ‖."""
    if v is None:
        return "None"
    if isinstance(v, int | float):
        return num(v, digits)
    dims = f"{shape(v.shape)} " if with_shape else ""
    if v.summary is None:
        flat = v.flat()
        if len(flat) <= limit:
            return nested(v.values, digits)
        head = ", ".join(nested(x, 4) for x in flat[:limit])
        return f"{dims}[{head}, {'...' if ascii else '…'}]"
    s = v.summary
    norm = "norm" if ascii else "‖·‖"
    return f"{dims}mean {num(s.mean, 4)} std {num(s.std, 4)} {norm} {num(s.norm, 4)}"


def cell(v: TensorView | None, width: int = 40) -> str:
    """A tensor in a table cell of at most `width` characters, narrower than `tensor`: up to
    four numbers (the first three of more; with fewer digits, then fewer numbers, until
    they fit), or its mean and standard deviation."""
    if v is None:
        return "None"
    if v.summary is not None:
        mean, std = num(v.summary.mean, 3), num(v.summary.std, 3)
        candidates = [f"μ {mean} σ {std}", f"μ {mean}"]
    else:
        flat = v.flat()
        whole = [nested(v.values, digits) for digits in (5, 4, 3)] if len(flat) <= 4 else []
        parts = [
            ", ".join(nested(x, digits) for x in flat[:n])
            for n in range(min(len(flat) - 1, 3), 0, -1)
            for digits in (4, 3)
        ]
        narrow = [f"{nested(flat[0], digits)} …" for digits in (3, 2)] if len(flat) > 1 else []
        candidates = whole + [f"[{part}, …]" for part in parts] + narrow or [nested(v.values)]
    fits = next((c for c in candidates if len(c) <= width), candidates[-1])
    return fits if len(fits) <= width else fits[: width - 1] + "…"


def brief(t: torch.Tensor | None) -> str:
    """A live tensor in an op's one-line summary: its values when small, else its shape and
    norm.

    One pass over the data: the full summary of a big tensor (mean, std, min, max, norm; std
    alone costs 30 times a mean) is computed only where it is shown (snapshots, JSON), not
    for every op's summary line, which `optdbg run --quiet` never prints."""
    import torch

    from .norms import norms
    from .snapshot import SMALL, view

    if t is None or t.numel() <= SMALL or t.layout != torch.strided:
        return tensor(view(t), limit=4)
    (norm,) = norms([t])
    return f"{shape(tuple(t.shape))} ‖·‖ {num(norm, 4)}"


def value(v: Any) -> str:
    """A hyperparameter (or any plain value): a number (a one-element tensor too) as `num`,
    a sequence in parentheses, anything else as its repr."""
    loaded = sys.modules.get("torch")  # not imported: `v` cannot be a tensor
    if loaded is not None and isinstance(v, loaded.Tensor) and v.numel() == 1:
        return num(v.item())
    if isinstance(v, float | int | bool) or v is None:
        return num(v)
    if isinstance(v, tuple | list):
        return "(" + ", ".join(value(x) for x in v) + ")"
    return repr(v)


def editable(v: Any) -> str:
    """A value as the user types it to edit it (`hyper.parse_value` reads it back): like `value`,
    a sequence without its parentheses."""
    if isinstance(v, tuple | list):
        return ", ".join(value(x) for x in v)
    return value(v)


def shape(dims: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in dims) + ")" if dims else "scalar"


TEXT_LIMIT = 2000
"""Characters of a message from a scenario shown or written (the rest is cut, and counted)."""
LINE_LIMIT = 200
"""Characters of a source line shown in a load error."""

_UNSAFE = {
    newlines: re.compile(
        ("[\x00-\x08\x0b-\x1f" if newlines else "[\x00-\x08\x0a-\x1f")
        + "\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]"
    )
    for newlines in (True, False)
}
"""What `text` escapes, with line breaks kept or not: C0 controls but tab (and newline),
DEL and C1 controls, lone surrogates, bidi embeddings, overrides and isolates."""


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def text(value: object, limit: int | None = TEXT_LIMIT, newlines: bool = True) -> str:
    """Text from a scenario, safe to print or write: control characters (escape sequences,
    carriage returns, bidi overrides, lone surrogates) become visible escapes such as
    `\\x1b`, and past `limit` characters the rest is cut, saying how much. Idempotent."""
    s = value if isinstance(value, str) else str(value)
    if limit is not None and len(s) > limit + 64:  # the margin keeps it idempotent
        s = f"{s[:limit]}… ({len(s) - limit} more characters)"
    return _UNSAFE[newlines].sub(_escape, s)


def name(value: object) -> str:
    """A name from a scenario (a parameter, a global, a type) on one line, escaped."""
    return text(value, limit=None, newlines=False)


def plural(n: int, word: str, words: str | None = None) -> str:
    """`1 iteration`, `2 iterations` (`words` for an irregular plural)."""
    return f"{n} {word if n == 1 else (words or word + 's')}"
