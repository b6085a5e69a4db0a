"""The pitfall detectors' former module: everything now lives in `optdbg.engine.pitfalls`
(one module per idea, the catalogue beside the rules); these names are kept for code that
imports them from here."""

from __future__ import annotations

from .pitfalls import (
    CATALOGUE,
    CODES,
    EXPLANATIONS,
    ONCE_CODES,
    Clear,
    Context,
    Detectors,
    Diagnosis,
    Explanation,
    Thresholds,
    diagnose,
)
from .pitfalls import measure as _measure

__all__ = [
    "CATALOGUE",
    "CODES",
    "EXPLANATIONS",
    "ONCE_CODES",
    "Clear",
    "Context",
    "Detectors",
    "Diagnosis",
    "Explanation",
    "Thresholds",
    "_measure",
    "diagnose",
]
