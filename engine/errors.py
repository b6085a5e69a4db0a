"""Errors that optdbg reports to the user as one clear message."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ScenarioError(Exception):
    """A scenario file that breaks the contract: where, what was expected, how to fix it."""

    file: str
    line: int | None
    problem: str
    expected: str
    fix: str
    source_line: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        parts = [f"{where}: {self.problem}"]
        if self.source_line:
            parts.append(f"    {self.line} | {self.source_line.rstrip()}")
        parts.append(f"  expected: {self.expected}")
        parts.append(f"  fix: {self.fix}")
        return "\n".join(parts)


def source_line(file: str, line: int | None) -> str | None:
    """The text of `line` in `file`, or None when it cannot be read."""
    if not line:
        return None
    try:
        lines = Path(file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    return lines[line - 1] if 0 < line <= len(lines) else None
