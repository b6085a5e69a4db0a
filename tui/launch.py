"""Start the TUI from the command line."""

from __future__ import annotations

from pathlib import Path


def open_tui(scenario: str | Path | None) -> int:
    """Open the app on a scenario (path or built-in name), or on the picker when None.

    The app draws its first frame before torch is imported; loading runs in a worker.
    """
    from .app import OptDbgApp

    OptDbgApp(scenario=scenario).run()
    return 0
