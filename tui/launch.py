"""Start the TUI from the command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any


def open_tui(scenario: str | Path | None, overrides: dict[str, Any] | None = None) -> int:
    """Open the app on a scenario (path or built-in name, with its `--set` values), or on
    the picker when None.

    The app draws its first frame before torch is imported; loading runs on the engine
    thread. On quit, the process ends at once once Textual has restored the terminal:
    tearing torch down (and waiting for a forward stuck in native code) took over a second
    and wrote nothing anyone needs; exports are complete files by then.
    """
    from .app import OptDbgApp

    app = OptDbgApp(scenario=scenario, overrides=overrides)
    app.run()
    code = app.return_code or 0
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
