"""What each operation did: immutable event records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OpSpec:
    """One op of the training loop: its key, its CLI words and what it does."""

    name: str
    key: str
    label: str
    """Its short name in the footer."""
    does: str
    """What it does, in the words of plain PyTorch (help screen, README, tooltips)."""

    @property
    def words(self) -> tuple[str, str]:
        return (self.key, self.name)


OP_TABLE: tuple[OpSpec, ...] = (
    OpSpec("forward", "f", "forward", "calls the scenario's forward; keeps the loss and its graph"),
    OpSpec("backward", "b", "backward", "`loss.backward()` on the latest loss"),
    OpSpec(
        "step",
        "s",
        "step",
        "`optimizer.step()` (then the scheduler, if any), or the scenario's `step()`",
    ),
    OpSpec(
        "zero_grad",
        "z",
        "zero_grad",
        "`optimizer.zero_grad()` (grads become `None`), or the scenario's `zero_grad()`",
    ),
    OpSpec(
        "evaluate",
        "v",
        "eval",
        "the scenario's evaluation (`test_data` or `evaluate()`) under `torch.no_grad()`, "
        "modules in eval mode; changes no parameter, grad or random state",
    ),
    OpSpec("next", "n", "next", "the next op of the iteration pattern"),
    OpSpec(
        "iteration",
        "i",
        "iter",
        "one whole iteration pattern (default forward, backward, step, zero_grad)",
    ),
)
"""The one table of ops: the Session, the CLI, the TUI's keys and help, and the README's
keys table are all made from (or checked against) it."""

OPS = ("forward", "backward", "step", "zero_grad")
"""The default iteration of a training loop, in order."""

LOOP_OPS = (*OPS, "evaluate")
"""The ops that change (or measure) the loop state; an iteration pattern is made of them."""

WORDS = {
    **{word: spec.name for spec in OP_TABLE for word in spec.words},
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
    evaluation: dict[str, float] | None = None
    """An `evaluate` op's result: named numbers ("loss", "accuracy", or what the scenario's
    evaluate() returned)."""
    observer_errors: tuple[str, ...] = ()
    """What an observer of this op failed to do, one line each ("graph: extraction failed:
    ..."): the op itself completed with its exact values; what it lost is said here."""

    @property
    def ok(self) -> bool:
        return self.error is None

    def codes(self) -> tuple[str, ...]:
        return tuple(w.code for w in self.warnings)
