"""Diagnostics: every finding so far grouped by code, with its meaning and fix."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..events import Event, Finding
from .catalogue import EXPLANATIONS, Explanation


@dataclass(frozen=True)
class Diagnosis:
    """Everything found for one code: what it means, how to fix it, where it happened."""

    code: str
    meaning: str
    fix: str
    occurrences: tuple[tuple[int, Finding], ...]
    """(event index, finding), in the order they happened."""

    @property
    def count(self) -> int:
        return len(self.occurrences)

    @property
    def first(self) -> int:
        return self.occurrences[0][0]

    @property
    def params(self) -> tuple[str, ...]:
        seen = dict.fromkeys(f.param for _, f in self.occurrences if f.param is not None)
        return tuple(seen)


def diagnose(events: Iterable[Event]) -> list[Diagnosis]:
    """All findings of these events grouped by code, in the order codes first appeared."""
    grouped: dict[str, list[tuple[int, Finding]]] = {}
    for event in events:
        for finding in event.warnings:
            grouped.setdefault(finding.code, []).append((event.index, finding))
    unknown = Explanation("", "")
    return [
        Diagnosis(code, *EXPLANATIONS.get(code, unknown), occurrences=tuple(found))
        for code, found in grouped.items()
    ]
