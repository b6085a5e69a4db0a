"""Start the TUI from the command line, and give the terminal back however the process ends.

Textual restores the terminal when the app exits. What it cannot see is the process being
ended under it: a fatal signal (SIGTERM, SIGHUP, a scenario's `signal.alarm`), or code
calling `os._exit`. `TerminalGuard` restores the terminal's modes (cooked input with echo,
no alternate screen, cursor shown, mouse reporting off) in those cases too, and says what
ended the process.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

_exit = os._exit
"""The real os._exit, whatever code running later replaces it with."""

FATAL = ("SIGTERM", "SIGHUP", "SIGALRM", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGVTALRM", "SIGPROF")
"""Signals that end the process by default and that Python lets a handler catch."""

RESET = (
    "\x1b[?1000l\x1b[?1003l\x1b[?1015l\x1b[?1006l\x1b[?1016l"  # mouse reporting off
    "\x1b[?2004l\x1b[?1004l\x1b[?2048l"  # bracketed paste, focus and resize reports off
    "\x1b[<u"  # the kitty keyboard protocol popped
    "\x1b[?7h\x1b[?1049l\x1b[?25h"  # line wrap on, the main screen back, the cursor shown
)
"""What undoes the modes Textual's Linux driver sets."""


class StdinRefused(io.TextIOBase):
    """sys.stdin while the TUI runs: the keyboard belongs to the app (a scenario reading
    stdin would swallow the user's keys, escape and q included)."""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        raise RuntimeError(
            "sys.stdin cannot be read in optdbg's TUI: the keyboard drives the app. "
            "Put the value in the scenario file (or use `optdbg run`)"
        )

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        return self.read()


class TerminalGuard:
    """Restore the terminal when the process is ended by a signal or by os._exit."""

    def __init__(self) -> None:
        self.fd = _tty(sys.__stdin__)
        self.out = _tty(sys.__stderr__) or _tty(sys.__stdout__)
        self.attrs: list[Any] | None = None
        self._previous: dict[int, Any] = {}

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        if self.fd is not None:
            import termios

            with contextlib.suppress(termios.error):
                self.attrs = termios.tcgetattr(self.fd)
        for name in FATAL:
            number = getattr(signal, name, None)
            if number is not None and signal.getsignal(number) is signal.SIG_DFL:
                self._previous[number] = signal.signal(number, self._on_signal)
        stdin, sys.stdin = sys.stdin, StdinRefused()
        os._exit = self._on_exit  # type: ignore[assignment]
        try:
            yield
        finally:
            os._exit = _exit
            sys.stdin = stdin
            for number, handler in self._previous.items():
                signal.signal(number, handler)

    def restore(self) -> None:
        """Put the terminal back as it was before the app started."""
        if self.out is not None:
            with contextlib.suppress(OSError):
                os.write(self.out, RESET.encode())
        if self.fd is not None and self.attrs is not None:
            import termios

            with contextlib.suppress(termios.error):
                termios.tcsetattr(self.fd, termios.TCSANOW, self.attrs)

    def _say(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            sys.__stderr__.write(f"optdbg: {text}\n")  # type: ignore[union-attr]
            sys.__stderr__.flush()  # type: ignore[union-attr]

    def _on_signal(self, number: int, _frame: FrameType | None) -> None:
        if _to_scenario(number):
            return  # the op running the scenario's code is stopped, and says why
        self.restore()
        name = signal.Signals(number).name
        why = (
            " (an alarm: signal.alarm() or setitimer() in the scenario?)" if "ALRM" in name else ""
        )
        self._say(f"ended by {name}{why}; the terminal was restored")
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)  # end as the signal would have, with its exit status

    def _on_exit(self, code: int) -> NoReturn:
        self.restore()
        self._say(f"os._exit({code}) was called while the TUI ran; the terminal was restored")
        _exit(code)


def _to_scenario(number: int) -> bool:
    """A timer signal (a scenario's `signal.alarm`) while scenario code runs on the engine
    thread: raised in that code instead of ending optdbg (see `optdbg.engine.guard`)."""
    guard = sys.modules.get("optdbg.engine.guard")  # not imported: no scenario code ran
    return guard is not None and number in guard.TIMER_SIGNALS and bool(guard.interrupt(number))


def _tty(stream: Any) -> int | None:
    try:
        return int(stream.fileno()) if stream is not None and stream.isatty() else None
    except (OSError, ValueError):
        return None


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
    with TerminalGuard().installed():
        app.run()
    code = app.return_code or 0
    sys.stdout.flush()
    sys.stderr.flush()
    _exit(code)
