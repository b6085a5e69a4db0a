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
  scenario set up fires later inside optdbg;
- a timer signal (SIGALRM, SIGVTALRM, SIGPROF) that arrives while it runs, with no handler
  of optdbg's, raises `RefusedCall` in that code instead of ending optdbg (`interrupt()`
  delivers it to code running off the main thread);
- off the main thread (the TUI's engine thread), where Python refuses `signal.signal`,
  the scenario's `signal.signal` calls are accepted and its `signal.getsignal` sees them,
  but they are not installed (a note says so): optdbg would put its own handlers back
  after that code anyway, as on the main thread.

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


class SignalArrived(RefusedCall):
    """A timer signal arrived while scenario code ran (raised in that code)."""

    def __init__(self, name: str | None = None) -> None:
        name = name or (_arrived[-1] if _arrived else "a signal")
        super().__init__(
            f"{name} arrived while the scenario's code ran (signal.alarm() or "
            "signal.setitimer() in the scenario?): its default action would end optdbg, so "
            "the op was stopped instead"
        )


TIMER_SIGNALS = tuple(
    getattr(signal, n) for n in ("SIGALRM", "SIGVTALRM", "SIGPROF") if hasattr(signal, n)
)
"""Signals a scenario's timers send, which end the process by default."""


_lock = threading.Lock()
_inside: dict[int, int] = {}
"""Thread id -> nesting depth of scenario code running on it."""
_saved: dict[str, Any] = {}
_real_exit = os._exit
_real_signal, _real_getsignal = signal.signal, signal.getsignal
_arrived: list[str] = []
"""The names of the timer signals delivered to scenario code (the latest last)."""
_virtual: dict[int, dict[int, Any]] = {}
"""Thread id -> the signal handlers its scenario code set where they cannot be installed."""
_notes: dict[int, list[str]] = {}
"""Thread id -> where to write what optdbg did about the scenario code running on it."""
_TORCH_THREADS = torch.get_num_threads()
_SIGNALS = tuple(signal.valid_signals())
_raw = importlib.import_module("_signal")
_getsignal: Callable[[int], Any] = _raw.getsignal
_setsignal: Callable[[int, Any], Any] = _raw.signal
"""`signal.getsignal` and `signal.signal` without their conversions of each signal and
handler to enums: those, for every signal before and after each op, cost 0.3 ms an op."""


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


def _off_main() -> bool:
    return _in_scenario() and threading.current_thread() is not threading.main_thread()


def _guarded_signal(signalnum: int, handler: Any) -> Any:
    """signal.signal while scenario code runs: off the main thread, accepted and noted."""
    if not _off_main():
        return _real_signal(signalnum, handler)
    sig = signal.Signals(signalnum)  # ValueError for a number that is no signal, as Python
    if sig in (getattr(signal, "SIGKILL", None), getattr(signal, "SIGSTOP", None)):
        raise OSError(22, "Invalid argument")
    if not callable(handler) and handler not in (signal.SIG_DFL, signal.SIG_IGN):
        raise TypeError(
            "signal handler must be signal.SIG_IGN, signal.SIG_DFL, or a callable object"
        )
    table = _virtual.setdefault(threading.get_ident(), {})
    previous = table.get(sig, _real_getsignal(sig))
    table[sig] = handler
    _note(
        f"signal.signal({sig.name}, {getattr(handler, '__name__', handler)}){_where()} was "
        "accepted, but a scenario's signal handlers do not take effect in the TUI (its keys, "
        "Ctrl-C included, drive the app; optdbg keeps its own handlers)"
    )
    return previous


def _guarded_getsignal(signalnum: int) -> Any:
    table = _virtual.get(threading.get_ident(), {}) if _off_main() else {}
    return table[signalnum] if signalnum in table else _real_getsignal(signalnum)


def _where() -> str:
    """` at line N of FILE`: the line of scenario code that called into the guard."""
    frame = sys._getframe(2)
    return f" at line {frame.f_lineno} of {os.path.basename(frame.f_code.co_filename)}"


def _note(text: str) -> None:
    notes = _notes.get(threading.get_ident())
    if notes is not None and text not in notes:
        notes.append(text)


def _enter(notes: list[str] | None) -> None:
    with _lock:
        me = threading.get_ident()
        if not _inside:
            _saved["exit"], _saved["stdin"] = os._exit, sys.stdin
            _saved["stdout"], _saved["stderr"] = sys.stdout, sys.stderr
            _saved["signal"], _saved["getsignal"] = signal.signal, signal.getsignal
            os._exit = _guarded_exit
            sys.stdin = _GuardedStdin(sys.stdin)
            signal.signal, signal.getsignal = _guarded_signal, _guarded_getsignal
        if me not in _inside:
            _notes[me] = notes if notes is not None else []
        _inside[me] = _inside.get(me, 0) + 1


def _leave() -> None:
    with _lock:
        me = threading.get_ident()
        _inside[me] -= 1
        if not _inside[me]:
            del _inside[me]
            _virtual.pop(me, None)
            _notes.pop(me, None)
        if not _inside:
            os._exit = _saved.pop("exit")
            sys.stdin = _saved.pop("stdin")
            sys.stdout, sys.stderr = _saved.pop("stdout"), _saved.pop("stderr")
            signal.signal, signal.getsignal = _saved.pop("signal"), _saved.pop("getsignal")


def interrupt(signum: int) -> bool:
    """A timer signal arrived on the main thread while scenario code runs on another one:
    raise `SignalArrived` in that code (as an op is cancelled). False when none runs."""
    import ctypes

    with _lock:
        threads = [t for t in _inside if t != threading.get_ident()]
        if not threads:
            return False
        _arrived.append(signal.Signals(signum).name)
        for ident in threads:
            exc = ctypes.py_object(SignalArrived)
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), exc)
    return True


def _on_timer_signal(signum: int, _frame: FrameType | None) -> None:
    _arrived.append(signal.Signals(signum).name)
    raise SignalArrived()


def _handlers() -> dict[signal.Signals, Any]:
    found = {}
    for sig in _SIGNALS:
        try:
            found[sig] = _getsignal(sig)
        except (OSError, ValueError):
            continue
    return found


def _watch_timers(handlers: dict[signal.Signals, Any]) -> None:
    """Timer signals without a handler raise in the scenario's code (main thread only)."""
    for sig in TIMER_SIGNALS:
        if handlers.get(sig) == signal.SIG_DFL:  # raw: the int 0
            _setsignal(sig, _on_timer_signal)


def _restore_process(limit: int, handlers: dict[signal.Signals, Any] | None, timer: float) -> None:
    if sys.getrecursionlimit() != limit:
        sys.setrecursionlimit(limit)
    if timer == 0 and signal.getitimer(signal.ITIMER_REAL)[0] > 0:
        signal.setitimer(signal.ITIMER_REAL, 0)
    if handlers is None:  # signal handlers can only be set on the main thread
        return
    for sig, handler in handlers.items():
        try:
            if _getsignal(sig) is not handler and handler is not None:
                _setsignal(sig, handler)
        except (OSError, ValueError, TypeError):
            continue


@contextmanager
def scenario_code(notes: list[str] | None = None) -> Iterator[None]:
    """Run the block as scenario code (see the module docstring); what optdbg did about it
    that the user should know (a signal handler it did not install) is added to `notes`."""
    main = threading.current_thread() is threading.main_thread()
    limit = sys.getrecursionlimit()
    handlers = _handlers() if main else None
    timer = signal.getitimer(signal.ITIMER_REAL)[0]
    if handlers is not None:
        _watch_timers(handlers)
    _enter(notes)
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
