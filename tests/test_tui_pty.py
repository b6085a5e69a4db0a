"""The TUI in a real pseudo-terminal: however its process is ended (a fatal signal), the
terminal is given back: no alternate screen, the cursor shown, mouse reporting off, echo on.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

OPTDBG = Path(sys.executable).with_name("optdbg")


def _read(fd: int, until: bytes, seconds: float) -> bytes:
    out = b""
    end = time.monotonic() + seconds
    while until not in out and time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                out += os.read(fd, 65536)
            except OSError:
                break
    return out


def _last(out: bytes, on: bytes, off: bytes) -> bool:
    """Whether a mode's last switch in the output is `off` (or it was never switched on)."""
    return out.rfind(off) >= out.rfind(on)


def test_sigterm_restores_the_terminal_and_says_so() -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [str(OPTDBG), "quadratic_bowl"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"},
    )
    try:
        out = _read(master, b"Quadratic", 120)
        assert b"\x1b[?1049h" in out, out[-500:]
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        out += _read(master, b"terminal was restored", 5)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGTERM
    assert b"ended by SIGTERM" in out
    assert _last(out, b"\x1b[?1049h", b"\x1b[?1049l")  # the main screen back
    assert _last(out, b"\x1b[?25l", b"\x1b[?25h")  # the cursor shown
    assert _last(out, b"\x1b[?1000h", b"\x1b[?1000l")  # mouse reporting off
    attrs = termios.tcgetattr(slave)
    assert attrs[3] & termios.ECHO and attrs[3] & termios.ICANON  # echo, line editing
    os.close(master)
    os.close(slave)
