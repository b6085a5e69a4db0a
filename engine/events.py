"""What each operation did: immutable event records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

OPS = ("forward", "backward", "step", "zero_grad")
"""The cycle of a training loop, in order."""

WORDS = {
    "f": "forward",
    "forward": "forward",
    "b": "backward",
    "backward": "backward",
    "s": "step",
    "step": "step",
    "z": "zero_grad",
    "zero_grad": "zero_grad",
    "n": "next",
    "next": "next",
    "i": "iteration",
    "iteration": "iteration",
    "u": "undo",
    "undo": "undo",
    "redo": "redo",
}
"""Op words accepted by the CLI (`--ops`) and `Session.perform`."""


@dataclass(frozen=True)
class Finding:
    """A pitfall detector's warning, with a stable code."""

    code: str
    message: str
    param: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class OpError:
    """An op that PyTorch (or the scenario) refused: PyTorch's words, then ours."""

    type: str
    message: str
    explanation: str

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "explanation": self.explanation}


@dataclass(frozen=True)
class Event:
    index: int
    """0-based position of this op in the session."""
    op: str
    summary: str
    """One line saying what the op did, with numbers."""
    loss: float | None
    """The latest loss after this op (None before the first forward or if not scalar)."""
    warnings: tuple[Finding, ...] = ()
    error: OpError | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def codes(self) -> tuple[str, ...]:
        return tuple(w.code for w in self.warnings)
