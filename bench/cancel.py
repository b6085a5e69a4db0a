"""Cancel latency: escape during a runaway forward, as the TUI cancels it.

A forward that never returns (tests/broken/hanging_forward.py, an endless Python loop) runs
on an EngineThread; once it has run a while, `cancel()` is called and the time until the op
has ended (with its OpCancelled error) is measured. The unit test proves the cancel lands
and the session carries on; the seconds it takes are this figure, not an assertion there.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .common import HERE, median

RUNAWAY = HERE.parent / "tests" / "broken" / "hanging_forward.py"
TARGET_S = 5.0


def cancel_once() -> float:
    """Seconds from `cancel()` to the op's end, for one runaway forward."""
    from optdbg.engine import Session
    from optdbg.tui.runner import EngineThread, run_job

    session = Session.open(RUNAWAY)
    engine = EngineThread(name="bench-engine")
    finished = threading.Event()
    engine.submit(run_job(lambda: session.perform("f"), lambda _r, _e: finished.set()))
    time.sleep(0.3)
    start = time.perf_counter()
    if not engine.cancel() or not finished.wait(30):
        raise RuntimeError("the runaway forward was not cancelled")
    seconds = time.perf_counter() - start
    engine.stop()
    return seconds


def run(quick: bool = False) -> dict[str, Any]:
    times = [cancel_once() for _ in range(1 if quick else 5)]
    return {"scenario": RUNAWAY.name, "cancel_s": median(times), "max_s": max(times),
            "repeats": len(times), "target_s": TARGET_S}  # fmt: skip
