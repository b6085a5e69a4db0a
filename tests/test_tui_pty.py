"""The TUI in a real pseudo-terminal: however its process is ended (a fatal signal), the
terminal is given back: no alternate screen, the cursor shown, mouse reporting off, echo on.
A scenario that reaches for the process (an alarm, os._exit, reading stdin) is stopped with
a message on screen, the keys still work, and quitting gives the terminal back.

These start the real `optdbg` (torch included) in a pty: on a loaded machine that takes a
while, so every wait is generous and none is asserted on; a test fails only on the outcome.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import pytest

OPTDBG = Path(sys.executable).with_name("optdbg")
START, REPLY = 240.0, 120.0
"""Seconds to wait for the first screen (torch is imported) and for a reply to a key."""
NEVER = b"\x00" * 8
"""A marker no screen contains: `_read` until it just waits and drains."""
pytestmark = pytest.mark.pty


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


def test_trace_tui_under_torchrun_follows_rank_0(tmp_path: Path) -> None:
    """Under torchrun without --json, rank 0 opens the paused TUI in the terminal; rank 1
    runs headless and unpaused (waiting for rank 0 only in DDP's own all-reduce), its output
    and records in a folder named on rank 0's log; `c` runs both to the end."""
    script = Path(__file__).parent / "trace_scripts" / "ddp.py"
    port = "29547"
    folder = Path(tempfile.gettempdir()) / f"optdbg-trace-127.0.0.1-{port}"
    shutil.rmtree(folder, ignore_errors=True)
    master, slave = pty.openpty()
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    proc = subprocess.Popen(
        [*launcher, "--master-addr", "127.0.0.1", "--master-port", port, "--no-python",
         str(OPTDBG), "trace", str(script), "--save", str(tmp_path / "traced")],
        stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
        env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"},
    )  # fmt: skip
    try:
        out = _read(master, b"first op", 240)
        assert b"trace ddp.py (rank 0)" in out, out[-800:]
        # rank 1 is not paused by optdbg: at most its zero_grad ran, and it waits in DDP's
        # all-reduce of its first backward for rank 0
        early = folder / "rank1.jsonl"
        assert len(early.read_text().splitlines() if early.exists() else []) <= 1
        os.write(master, b"c")
        out += _read(master, b"ended with status 0", 240)
        assert b"ended with status 0" in out, out[-800:]
        os.write(master, b"q")
        proc.wait(120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        os.close(master)
        os.close(slave)
    assert proc.returncode == 0
    records = [json.loads(x) for x in (folder / "rank1.jsonl").read_text().splitlines()]
    assert [r["op"] for r in records] == ["zero_grad", "backward", "step"] * 3
    assert {r["rank"] for r in records} == {1} and all(not r["warnings"] for r in records)
    assert "rank 1 step 2 loss" in (folder / "rank1.log").read_text()
    for rank in (0, 1):
        assert (tmp_path / f"traced.rank{rank}").exists()


class Tui(NamedTuple):
    proc: subprocess.Popen[bytes]
    master: int
    slave: int


@contextmanager
def tui(*args: str, size: tuple[int, int] = (100, 30)) -> Iterator[Tui]:
    """The real optdbg in a pseudo-terminal of `size` (columns, lines); killed if still
    running at the end."""
    master, slave = pty.openpty()
    columns, lines = size
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    proc = subprocess.Popen(
        [str(OPTDBG), *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        env={**os.environ, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": str(lines)},
    )
    try:
        yield Tui(proc, master, slave)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        os.close(master)
        os.close(slave)


def _until_exit(t: Tui, seconds: float) -> bytes:
    """Everything written until the process has exited and the pty is drained."""
    out = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ready, _, _ = select.select([t.master], [], [], 0.2)
        if ready:
            try:
                out += os.read(t.master, 65536)
            except OSError:
                break
        elif t.proc.poll() is not None:
            break
    return out


def assert_restored(out: bytes, slave: int) -> None:
    """The terminal as it was: the main screen, the cursor shown, no mouse reporting."""
    assert b"\x1b[?1049h" in out  # the app did take the alternate screen
    assert _last(out, b"\x1b[?1049h", b"\x1b[?1049l"), out[-300:]
    assert _last(out, b"\x1b[?25l", b"\x1b[?25h"), out[-300:]
    for mode in (b"1000", b"1003", b"1006"):
        assert _last(out, b"\x1b[?" + mode + b"h", b"\x1b[?" + mode + b"l"), mode
    attrs = termios.tcgetattr(slave)
    assert attrs[3] & termios.ECHO and attrs[3] & termios.ICANON  # echo, line editing


ALARM = """\
\"\"\"Alarm in forward: arms a real-time timer and keeps computing.\"\"\"
import signal
import time
import torch
t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)

def forward():
    signal.setitimer(signal.ITIMER_REAL, 0.05)
    end = time.monotonic() + 30
    while time.monotonic() < end:  # the alarm arrives in here
        pass
    return (t**2).sum()
"""
EXIT = """\
\"\"\"Exit in forward: os._exit(3).\"\"\"
import os
import torch
t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)

def forward():
    os._exit(3)
"""
STDIN = """\
\"\"\"Stdin in forward: reads a line.\"\"\"
import sys
import torch
t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)

def forward():
    scale = float(sys.stdin.readline() or 1)
    return scale * (t**2).sum()
"""


REACHING = [
    (ALARM, b"Alarm in forward", b"SIGALRM arrived"),
    (EXIT, b"Exit in forward", b"os._exit(3) cannot be used"),
    (STDIN, b"Stdin in forward", b"reading sys.stdin cannot be used"),
]
"""Scenarios that reach for the process, the title each shows, and what the app says."""


def test_scenarios_reaching_for_the_process_are_stopped_and_the_keys_still_work(
    tmp_path: Path,
) -> None:
    """One process for the three (torch is imported once): each is written over the
    scenario file and loaded with r."""
    path = tmp_path / "scenario.py"
    path.write_text(REACHING[0][0])
    with tui(str(path)) as t:
        out = b""
        for i, (source, title, says) in enumerate(REACHING):
            if i:
                path.write_text(source)
                os.write(t.master, b"r")
            out += _read(t.master, title, START)
            assert title in out, out[-500:]
            os.write(t.master, b"f")
            reply = _read(t.master, says, REPLY)
            out += reply
            assert says in reply, (title, reply[-800:])
            assert t.proc.poll() is None  # optdbg is still running
            os.write(t.master, b"\x1b")  # escape: nothing to cancel, nothing breaks
            out += _read(t.master, NEVER, 1.0)  # a lone escape, not the start of alt+z
            os.write(t.master, b"z")  # an op still runs after it
            reply = _read(t.master, b"#1 zero_grad", REPLY)
            out += reply
            assert b"#1 zero_grad" in reply, (title, reply[-800:])
        os.write(t.master, b"q")
        out += _until_exit(t, REPLY)
        assert t.proc.wait(REPLY) == 0
        assert_restored(out, t.slave)
