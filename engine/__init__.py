"""optdbg's UI-free core: scenario loading, the stepping Session, events, snapshots, graphs.

Names are imported lazily so that torch-free parts (built-in listing, formatting) load fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "ScenarioError": "errors",
    "OPS": "events",
    "WORDS": "events",
    "Event": "events",
    "Finding": "events",
    "OpError": "events",
    "Scenario": "scenario",
    "load": "scenario",
    "builtin_names": "builtins",
    "Session": "session",
    "UpdateDetail": "session",
    "ParamSnapshot": "snapshot",
    "Snapshot": "snapshot",
    "TensorView": "snapshot",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
