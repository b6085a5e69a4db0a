"""The README's pitfall table, generated from the catalogue (a test keeps the README equal)."""

from __future__ import annotations

from dataclasses import fields

from .. import fmt
from .catalogue import CODES, TRIGGERS
from .thresholds import Thresholds


def markdown() -> str:
    """One row per code: the code, when it fires, its thresholds with their defaults."""
    defaults = {f.name: getattr(Thresholds(), f.name) for f in fields(Thresholds)}
    rows = ["| code | when it fires | thresholds (default) |", "|---|---|---|"]
    for code in CODES:
        trigger = TRIGGERS[code]
        tuned = ", ".join(f"`{n}` = {_value(defaults[n])}" for n in trigger.thresholds) or "—"
        rows.append(f"| `{code}` | {trigger.when} | {tuned} |")
    return "\n".join(rows) + "\n"


def _value(value: object) -> str:
    return fmt.num(float(value)) if isinstance(value, float) else str(value)
