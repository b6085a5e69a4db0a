"""Errors that optdbg reports to the user as one clear message."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import fmt


@dataclass(eq=False)
class ScenarioError(Exception):
    """A scenario file that breaks the contract: where, what was expected, how to fix it.
    Not frozen: Python sets `__traceback__` on an exception as it passes a `with` block."""

    file: str
    line: int | None
    problem: str
    expected: str
    fix: str
    source_line: str | None = None

    def __str__(self) -> str:
        """The message, every part of it escaped and cut to a readable length (a scenario's
        file name, text and source lines may hold anything)."""
        file = fmt.name(self.file)
        where = f"{file}:{self.line}" if self.line else file
        parts = [f"{where}: {fmt.text(self.problem, newlines=False)}"]
        if self.source_line:
            shown = fmt.text(self.source_line.rstrip(), fmt.LINE_LIMIT, newlines=False)
            parts.append(f"    {self.line} | {shown}")
        parts.append(f"  expected: {fmt.text(self.expected)}")
        parts.append(f"  fix: {fmt.text(self.fix)}")
        return "\n".join(parts)


def source_line(file: str, line: int | None) -> str | None:
    """The text of `line` in `file`, or None when it cannot be read."""
    if not line:
        return None
    try:
        lines = Path(file).read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    return lines[line - 1] if 0 < line <= len(lines) else None


def message_of(e: BaseException) -> str:
    """An exception's message, safe to show: escaped, cut to a readable length, and never
    raising (an exception's own __str__ may raise)."""
    try:
        text = str(e).strip()
    except Exception as inner:
        kind = fmt.name(type(e).__name__)
        return f"(its message cannot be read: {kind}.__str__ raised {type(inner).__name__})"
    return fmt.text(text)


def type_of(e: BaseException) -> str:
    """An exception's type name, safe to show."""
    return fmt.name(type(e).__name__)


FAILURE_LIMIT = 240
"""The longest exception message an observer's failure quotes (PyTorch's dispatcher errors
run to thousands of characters)."""


def failure(e: BaseException) -> str:
    """An exception in one line, safe to show: its type and the first line of its message."""
    lines = message_of(e).splitlines()
    first = fmt.text(lines[0], FAILURE_LIMIT, newlines=False) if lines else ""
    return f"{type_of(e)}: {first}" if first else type_of(e)
