"""The engine thread: runs one session's torch work, one job at a time, off the UI thread.

A daemon thread rather than Textual's thread workers (which run in asyncio's default
executor, joined at exit): a scenario whose forward never returns must not stop the user
from reloading or quitting. Cancelling raises `OpCancelled` inside the thread; code stuck
in native code cannot be interrupted, and its thread is simply abandoned.
"""

from __future__ import annotations

import ctypes
import queue
import threading
import time
from collections.abc import Callable
from typing import Any


class OpCancelled(Exception):
    """Raised inside the engine thread when the user cancels the running job."""

    def __init__(self) -> None:
        super().__init__("cancelled by the user")


Job = Callable[[], None]


class EngineThread:
    """A daemon thread that runs submitted jobs in order."""

    def __init__(self, name: str = "optdbg-engine") -> None:
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._lock = threading.Lock()
        self._started_at: float | None = None
        self._thread.start()

    def submit(self, job: Job) -> None:
        self._jobs.put(job)

    def stop(self) -> None:
        """Finish the current job, then end the thread (abandoned if it never finishes)."""
        self._jobs.put(None)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def elapsed(self) -> float | None:
        """Seconds the current job has been running, or None when idle."""
        with self._lock:
            return None if self._started_at is None else time.monotonic() - self._started_at

    def cancel(self) -> bool:
        """Ask the running job to stop by raising OpCancelled in it; False when idle."""
        with self._lock:
            if self._started_at is None or self._thread.ident is None:
                return False
            ident = ctypes.c_ulong(self._thread.ident)
            done = ctypes.pythonapi.PyThreadState_SetAsyncExc(ident, ctypes.py_object(OpCancelled))
            return bool(done == 1)

    def _loop(self) -> None:
        while True:
            try:  # a late OpCancelled may land anywhere in here: nothing may end the loop
                job = self._jobs.get()
                if job is None:
                    return
                with self._lock:
                    self._started_at = time.monotonic()
                try:
                    job()
                finally:
                    with self._lock:
                        self._started_at = None
            except BaseException:  # jobs report their own errors through `done`
                continue


def run_job(job: Callable[[], Any], done: Callable[[Any, BaseException | None], None]) -> Job:
    """Wrap a job so its result or exception is handed to `done` (called in the thread)."""

    def wrapped() -> None:
        try:
            result = job()
        except BaseException as e:  # includes OpCancelled delivered outside the engine
            done(None, e)
            return
        done(result, None)

    return wrapped
