"""The TUI in a real pseudo-terminal: however its process is ended (a fatal signal), the
terminal is given back: no alternate screen, the cursor shown, mouse reporting off, echo on.
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import tempfile
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
