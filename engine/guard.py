"""What scenario code may not do to optdbg's own process, and what optdbg restores after it.

Scenario code (loading the file, and every op that calls into it) runs inside
`scenario_code()`. There:

- `os._exit()` raises `RefusedCall` instead of ending the process at once (which would
  leave the terminal raw and lose what optdbg has not written), as `input()` is refused;
- reading `sys.stdin` raises `RefusedCall`: the terminal's keys belong to optdbg;
- afterwards `sys.stdout`, `sys.stderr`, optdbg's recursion limit and signal handlers are
  put back (a scenario that rebinds them at load does not take over optdbg's output or
  Ctrl-C), and a real-time
  timer (`signal.alarm`, `setitimer`) the scenario armed is disarmed, so nothing the
  scenario set up fires later inside optdbg.

`reset_torch()` puts back torch's process-wide settings a scenario can change (default
dtype, deterministic algorithms, anomaly detection, grad mode, threads) before a load, so
one scenario's settings never leak into the next one opened in the same process.

`UserInterrupt` is the Ctrl-C of the person running optdbg (raised by the handler that
`user_interrupts()` installs); any other KeyboardInterrupt came from the scenario's code
and is recorded as its error, like any exception.
"""

from __future__ import annotations

import importlib
import io
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, NoReturn

import torch


class RefusedCall(RuntimeError):
    """Scenario code called something optdbg cannot allow (os._exit, reading stdin)."""


class UserInterrupt(KeyboardInterrupt):
    """Ctrl-C pressed by the user, as opposed to a KeyboardInterrupt the scenario raised."""


_lock = threading.Lock()
_inside: dict[int, int] = {}
"""Thread id -> nesting depth of scenario code running on it."""
_saved: dict[str, Any] = {}
_real_exit = os._exit
_TORCH_THREADS = torch.get_num_threads()
_SIGNALS = tuple(signal.valid_signals())
_getsignal: Callable[[int], Any] = importlib.import_module("_signal").getsignal
"""`signal.getsignal` without its conversion of each handler to an enum: that conversion,
for every signal before and after each op, cost 0.3 ms an op."""


def _in_scenario() -> bool:
    return _inside.get(threading.get_ident(), 0) > 0


def _guarded_exit(status: int = 0) -> NoReturn:
    if _in_scenario():
        raise RefusedCall(
            f"os._exit({status!r}) cannot be used in a scenario: it would end optdbg at once, "
            "without restoring the terminal or writing its output"
        )
    _real_exit(status)


class _GuardedStdin:
    """sys.stdin while scenario code runs: reading it is refused on that code's thread."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def _refuse(self) -> None:
        if _in_scenario() or self._real is None:
            raise RefusedCall(
                "reading sys.stdin cannot be used in a scenario: optdbg runs it without a "
                "prompt, and the terminal's keys are optdbg's"
            )

    def read(self, size: int | None = -1) -> str:
        self._refuse()
        return str(self._real.read(size))

    def readline(self, size: int | None = -1) -> str:
        self._refuse()
        return str(self._real.readline(size))

    def readlines(self, hint: int | None = -1) -> list[str]:
        self._refuse()
        return list(self._real.readlines(hint))

    def __iter__(self) -> _GuardedStdin:
        return self

    def __next__(self) -> str:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def readable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return bool(self._real is not None and self._real.isatty())

    def fileno(self) -> int:
        if self._real is None:
            raise io.UnsupportedOperation("fileno")
        return int(self._real.fileno())

    @property
    def encoding(self) -> str:
        return str(getattr(self._real, "encoding", "utf-8"))

    def __getattr__(self, name: str) -> Any:  # closed, errors...: the real stream's
        if name == "buffer":
            self._refuse()
        return getattr(self._real, name)


def _enter() -> None:
    with _lock:
        me = threading.get_ident()
        if not _inside:
            _saved["exit"], _saved["stdin"] = os._exit, sys.stdin
            _saved["stdout"], _saved["stderr"] = sys.stdout, sys.stderr
            os._exit = _guarded_exit
            sys.stdin = _GuardedStdin(sys.stdin)
        _inside[me] = _inside.get(me, 0) + 1


def _leave() -> None:
    with _lock:
        me = threading.get_ident()
        _inside[me] -= 1
        if not _inside[me]:
            del _inside[me]
        if not _inside:
            os._exit = _saved.pop("exit")
            sys.stdin = _saved.pop("stdin")
            sys.stdout, sys.stderr = _saved.pop("stdout"), _saved.pop("stderr")


def _handlers() -> dict[signal.Signals, Any]:
    found = {}
    for sig in _SIGNALS:
        try:
            found[sig] = _getsignal(sig)
        except (OSError, ValueError):
            continue
    return found


def _restore_process(limit: int, handlers: dict[signal.Signals, Any] | None, timer: float) -> None:
    if sys.getrecursionlimit() != limit:
        sys.setrecursionlimit(limit)
    if handlers is None:  # signal handlers can only be set on the main thread
        return
    for sig, handler in handlers.items():
        try:
            if _getsignal(sig) is not handler and handler is not None:
                signal.signal(sig, handler)
        except (OSError, ValueError, TypeError):
            continue
    if timer == 0 and signal.getitimer(signal.ITIMER_REAL)[0] > 0:
        signal.setitimer(signal.ITIMER_REAL, 0)


@contextmanager
def scenario_code() -> Iterator[None]:
    """Run the block as scenario code (see the module docstring)."""
    main = threading.current_thread() is threading.main_thread()
    limit = sys.getrecursionlimit()
    handlers = _handlers() if main else None
    timer = signal.getitimer(signal.ITIMER_REAL)[0] if main else 0.0
    _enter()
    try:
        yield
    finally:
        try:
            _leave()
        finally:
            _restore_process(limit, handlers, timer)


def reset_torch() -> None:
    """torch's process-wide settings back to their defaults, before loading a scenario."""
    torch.set_default_dtype(torch.float32)
    torch.use_deterministic_algorithms(False)
    torch.autograd.set_detect_anomaly(False)
    torch.set_grad_enabled(True)
    if torch.get_num_threads() != _TORCH_THREADS:
        torch.set_num_threads(_TORCH_THREADS)


def _raise_user_interrupt(signum: int, frame: FrameType | None) -> None:
    raise UserInterrupt


@contextmanager
def user_interrupts() -> Iterator[None]:
    """Within the block, Ctrl-C (SIGINT) raises UserInterrupt (on the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        previous = signal.signal(signal.SIGINT, _raise_user_interrupt)
    except (OSError, ValueError):
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
