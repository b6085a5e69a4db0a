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
