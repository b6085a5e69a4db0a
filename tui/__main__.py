"""`python -m optdbg.tui` runs the `optdbg` command (how `optdbg serve` starts each tab's app)."""

from .cli import main

raise SystemExit(main())
