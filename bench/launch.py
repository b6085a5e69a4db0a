"""Launch to first frame and to first usable key, in a real pseudo-terminal.

`optdbg quadratic_bowl` is started on a pty (120x40, TERM=xterm-256color) and its output
read as it comes. Times are from just before the process is spawned:

- first frame: the first screen drawn (the status bar's "optdbg" or the footer's keys);
- usable: the scenario is loaded and shown ("next: forward" in the status bar), so a key
  does something (keys pressed earlier are queued, not lost);
- key: then `f` is sent and the time until its result ("loss = 201") is on screen.

Compared with `python -c "import torch"` started the same way (the target: usable within
torch's import time + 0.5 s).
"""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
from typing import Any

from .common import median, perf

_ANSI = re.compile(
    r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[PX^_][^\x1b]*\x1b\\|[@-Z\\-_])"
)
COLS, ROWS = 120, 40


def optdbg_command() -> list[str]:
    script = shutil.which("optdbg", path=os.path.dirname(sys.executable))
    if script:
        return [script]
    return [sys.executable, "-c", "import sys; from optdbg.tui.cli import main; sys.exit(main())"]


def _pty() -> tuple[int, int]:
    import fcntl
    import pty
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    return master, slave


class _Reader:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.raw = b""

    def text(self) -> str:
        return _ANSI.sub("", self.raw.decode("utf-8", "replace"))

    def until(self, markers: tuple[str, ...], timeout: float, start: int = 0) -> float | None:
        """Read until one of the markers is in the output (after `start` chars of text);
        the time it was seen, or None at timeout / end of output."""
        deadline = perf() + timeout
        while True:
            text = self.text()
            if any(m in text[start:] for m in markers):
                return perf()
            left = deadline - perf()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.05))
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    return None
                if not chunk:
                    return None
                self.raw += chunk


def launch_once(spec: str = "quadratic_bowl", timeout: float = 60.0) -> dict[str, Any]:
    master, slave = _pty()
    env = dict(os.environ, TERM="xterm-256color", COLORTERM="truecolor", COLUMNS=str(COLS))
    env["LINES"] = str(ROWS)
    with tempfile.TemporaryDirectory() as cwd:
        t0 = perf()
        proc = subprocess.Popen(
            [*optdbg_command(), spec],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
        os.close(slave)
        reader = _Reader(master)
        try:
            t_frame = reader.until(("optdbg", " quit"), timeout)
            t_usable = reader.until(("next: forward",), timeout)
            t_key = None
            if t_usable is not None:
                mark = len(reader.text())
                t_sent = perf()
                os.write(master, b"f")
                seen = reader.until(("loss = 201",), timeout, start=mark)
                t_key = None if seen is None else seen - t_sent
            os.write(master, b"q")
            deadline = perf() + 15
            while proc.poll() is None and perf() < deadline:
                reader.until((), 0.1)  # keep draining: a full pty would block its exit
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                proc.wait()
            os.close(master)
    return {
        "first_frame_s": None if t_frame is None else t_frame - t0,
        "usable_s": None if t_usable is None else t_usable - t0,
        "key_s": t_key,
        "returncode": proc.returncode,
        "tail": reader.text()[-400:] if t_usable is None else "",
    }


PLAIN_SCRIPT = "import torch; torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)"
"""What any plain training script pays before its loop: torch, and the first optimizer
(whose constructor imports torch._dynamo, through torch._disable_dynamo)."""


def python_once(code: str) -> float:
    t0 = perf()
    subprocess.run([sys.executable, "-c", code], check=True)
    return perf() - t0


def run(quick: bool = False) -> dict[str, Any]:
    reps = 1 if quick else 3
    runs, torch_s, script_s = [], [], []
    for _ in range(reps):  # alternate, so all see the same load
        torch_s.append(python_once("import torch"))
        runs.append(launch_once())
        if not quick and not script_s:  # once: it only puts the other two in context
            script_s.append(python_once(PLAIN_SCRIPT))
    frames = [r["first_frame_s"] for r in runs if r["first_frame_s"] is not None]
    usable = [r["usable_s"] for r in runs if r["usable_s"] is not None]
    keys = [r["key_s"] for r in runs if r["key_s"] is not None]
    failures = [r for r in runs if r["usable_s"] is None]
    return {
        "command": " ".join([os.path.basename(optdbg_command()[0]), "quadratic_bowl"]),
        "terminal": f"pty {COLS}x{ROWS}",
        "repeats": reps,
        "first_frame_s": median(frames),
        "usable_s": median(usable),
        "key_after_load_s": median(keys),
        "import_torch_s": median(torch_s),
        "usable_minus_torch_s": median(usable) - median(torch_s),
        "plain_script_s": median(script_s),
        "runs": runs,
        "failures": len(failures),
    }
