"""Headless output: the JSON record of an op and the readable one-line trace."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import fmt
from .events import Event
from .snapshot import Snapshot, TensorView

if TYPE_CHECKING:
    from .session import Session


def record(event: Event, snap: Snapshot) -> dict[str, Any]:
    """The JSON Lines record for one op (the format DESIGN.md fixes; an op whose observers
    failed adds "observer_errors", as an evaluate adds "eval")."""
    return _record(event, snap.loss, [(p.name, p.value, p.grad) for p in snap.params])


def _record(
    event: Event, loss: float | None, params: Sequence[tuple[str, TensorView, TensorView | None]]
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "index": event.index,
        "op": event.op,
        "loss": loss,
        "params": {name: value.to_json() for name, value, _ in params},
        "grads": {name: grad.to_json() if grad is not None else None for name, _, grad in params},
        "warnings": [w.to_json() for w in event.warnings],
        "error": event.error.to_json() if event.error is not None else None,
    }
    if event.evaluation is not None:
        out["eval"] = dict(event.evaluation)
    if event.observer_errors:
        out["observer_errors"] = list(event.observer_errors)
    return out


def json_line(event: Event, session: Session, **first: Any) -> str:
    """The `--json` line for an op the session has just performed (`first`: keys written
    before the record's own, e.g. compare's `variant`)."""
    return record_line(event, session.loss_value, session.param_views(), **first)


def record_line(
    event: Event,
    loss: float | None,
    params: Sequence[tuple[str, TensorView, TensorView | None]],
    **first: Any,
) -> str:
    """The `--json` line of an op from its detached parts (a debugger's `Record`)."""
    record = _record(event, loss, params)
    return json.dumps({**first, **record}, default=_json_value)


def _json_value(value: object) -> object:
    """JSON for what json cannot write itself: complex numbers as [real, imag]."""
    if isinstance(value, complex):
        return [value.real, value.imag]
    return str(value)


def trace_line(event: Event) -> str:
    """One readable line per op, warnings and errors on indented lines below."""
    mark = "!" if event.error else " "
    lines = [f"{mark}{event.index:>4}  {event.op:<9}  {event.summary}"]
    lines += [f"        warning [{w.code}] {w.message}" for w in event.warnings]
    if event.error:
        lines.append(f"        {event.error.explanation}")
    lines += [f"        observer failed: {failure}" for failure in event.observer_errors]
    return "\n".join(lines)


def summary_line(events: list[Event], snap: Snapshot) -> str:
    """The one-line summary printed by --quiet."""
    codes = sorted({w.code for e in events for w in e.warnings})
    errors = sum(1 for e in events if e.error)
    warned = ", ".join(codes) if codes else "none"
    failed = sum(1 for e in events if e.observer_errors)
    return (
        f"{snap.scenario}: {len(events)} ops, {snap.step_count} steps, "
        f"final loss {fmt.num(snap.loss)}, errors {errors}, warnings: {warned}"
        + (f", ops whose observers failed: {failed}" if failed else "")
    )
