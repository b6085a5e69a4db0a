"""Trace a user's own training code: its backward, step and zero_grad calls are the ops.

From Python (a notebook, a test)::

    from optdbg.engine.trace import trace

    with trace() as t:
        train()
    t.records      # one JSON record per op, as `optdbg trace --json` writes them
    t.events       # the Events, warnings included

From the command line: `optdbg trace train.py ARGS` (see `script.run_script`). Names are
imported lazily, so that checking a script's path needs no torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "ScriptError": "check",
    "check_script": "check",
    "run_script": "script",
    "Trace": "api",
    "trace": "api",
    "Pending": "tracer",
    "TracedOp": "tracer",
    "Tracer": "tracer",
    "TraceStopped": "tracer",
    "env_rank": "tracer",
    "Where": "naming",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
