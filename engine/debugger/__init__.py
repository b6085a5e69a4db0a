"""The debugger façade between the engine and a UI (as `bdb` is to `pdb`).

A UI sends typed commands (frozen dataclasses: `Perform`, `Undo`, `SetHyper`, ...) to
`Debugger.execute` and gets back a typed outcome (`Performed`, `Continued`, `Noted`, ...)
carrying a detached `View`: plain data (a `Snapshot`, an `UpdateDetail`, a `Graph`), never a
live tensor of the loop. A command that cannot be carried out is an outcome too (`Refused`:
nothing changed; `Failed`: an unexpected error), never an exception.

- `commands`: what a UI may ask; `outcomes`: what comes back, and the views. Neither imports
  torch, so a UI imports them before the engine thread has loaded it (this package exports
  both).
- `facade`: `Debugger` (one session) and `CompareDebugger` (variants in lockstep), which
  carry the commands out. The engine's policy lives there, not in the UI: which graph data a
  panel debugger records, what `continue` stops on, what a headless run copies.

The TUI calls `execute` on its engine thread (one command at a time), `optdbg run` calls it
synchronously, tests call it directly. `engine.trace.debugger.TraceDebugger` is the same idea
for a script that performs its own ops.
"""

from .commands import (
    Batch,
    Choose,
    Command,
    ContinueUntil,
    Diagnose,
    DrawLandscape,
    DrawSlice,
    ExportGraph,
    ExportLandscape,
    ExportLosses,
    Goto,
    Perform,
    Redo,
    RunEpoch,
    Select,
    SetHyper,
    SlowBackward,
    Tabulate,
    Undo,
)
from .outcomes import (
    CompareView,
    Continued,
    Counters,
    Diagnosed,
    Exported,
    ExportProblem,
    Failed,
    Landscape,
    LockstepProgress,
    Noted,
    OnProgress,
    Outcome,
    Performed,
    Progress,
    Record,
    Refused,
    Severity,
    SlowMotion,
    Tabulated,
    VariantOps,
    View,
    Viewed,
)

__all__ = [
    "Batch",
    "Choose",
    "Command",
    "CompareView",
    "ContinueUntil",
    "Continued",
    "Counters",
    "Diagnose",
    "Diagnosed",
    "DrawLandscape",
    "DrawSlice",
    "ExportGraph",
    "ExportLandscape",
    "ExportLosses",
    "ExportProblem",
    "Exported",
    "Failed",
    "Goto",
    "Landscape",
    "LockstepProgress",
    "Noted",
    "OnProgress",
    "Outcome",
    "Perform",
    "Performed",
    "Progress",
    "Record",
    "Redo",
    "Refused",
    "RunEpoch",
    "Select",
    "SetHyper",
    "Severity",
    "SlowBackward",
    "SlowMotion",
    "Tabulate",
    "Tabulated",
    "Undo",
    "VariantOps",
    "View",
    "Viewed",
]
