"""Lay out DOT through the graphviz package, in a child process optdbg can stop.

The graphviz package (`graphviz.pipe`) runs the `dot` it finds on PATH and waits for it
without a time limit, so optdbg calls it in a small worker process of its own (this file,
run as a script) started in a new process group: a render that takes too long, that the
user cancels (escape in the TUI) or that is still running when optdbg exits is killed with
its `dot`, never left spinning. The worker's PATH starts with a private folder holding a
`dot` that is the chosen renderer (the system Graphviz, or graphviz-pure when the system
has none): that is how the graphviz package is told which program to run.

Only the standard library and graphviz are imported here, so the worker starts in a
fraction of a second (it runs with `python -I`, without optdbg or torch).
"""

from __future__ import annotations

import atexit
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

POLL = 0.2
"""Seconds between checks while waiting for the worker: the waiting thread returns to
Python that often, so a cancel raised in it (the TUI's engine thread) is delivered."""

MAX_SIDE = 30000
MAX_AREA = 100_000_000
"""Limits of a PNG, in pixels: bigger drawings are rendered at a lower dpi (never below
40, where 10-point labels are still readable when zoomed)."""

_live: set[subprocess.Popen[bytes]] = set()
_lock = threading.Lock()
_bin: dict[str, str] = {}
"""Renderer path -> the private folder whose `dot` is that renderer."""


def render(dot: str, fmt: str, program: str, timeout: float) -> bytes:
    """Lay out DOT text with `program` into `fmt` ("png", "svg") and return the bytes.

    Args:
        dot: the DOT source.
        fmt: a Graphviz output format.
        program: path of a dot-compatible program (Graphviz's dot or graphviz-pure).
        timeout: seconds each layout may take (a PNG is laid out twice: once to size
            it, see `_png_dpi`) before the render is killed.
    Returns:
        The rendered file's bytes (PNGs sized within MAX_SIDE and MAX_AREA).
    Raises:
        RuntimeError: with one line saying why (not found, failed, too slow).
        BaseException: whatever interrupts the wait (a cancel); the render is killed first.
    """
    if not os.access(program, os.X_OK):
        what = "cannot be executed" if os.path.exists(program) else "was not found"
        raise RuntimeError(f"{program} {what}")
    proc = _start(fmt, program)
    try:
        out, err = _wait(proc, dot.encode("utf-8"), timeout * (2 if fmt == "png" else 1))
    finally:
        _stop(proc)
    if proc.returncode is not None and proc.returncode < 0:
        raise RuntimeError(f"was stopped (signal {-proc.returncode})")
    if proc.returncode != 0 or not out:
        lines = err.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"exit status {proc.returncode}")
    return out


def cancel_renders() -> int:
    """Kill every render still running (with its `dot`); returns how many there were."""
    with _lock:
        running = list(_live)
    for proc in running:
        _stop(proc)
    return len(running)


def _start(fmt: str, program: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PATH": _dot_folder(program) + os.pathsep + os.environ.get("PATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-I", __file__, fmt],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,  # its own process group: killing it kills its dot too
    )
    with _lock:
        _live.add(proc)
    return proc


def _wait(proc: subprocess.Popen[bytes], data: bytes, timeout: float) -> tuple[bytes, bytes]:
    """Feed the worker and collect its output, in short waits (see POLL)."""
    waited = 0.0
    feed: bytes | None = data
    while True:
        try:
            return proc.communicate(feed, timeout=POLL)
        except subprocess.TimeoutExpired:
            feed = None  # communicate keeps what it already sent and read
            waited += POLL
            if waited >= timeout:
                raise RuntimeError(f"took more than {timeout:.0f} s") from None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill the worker's process group unless it has ended, and forget it."""
    if proc.poll() is None:
        try:
            if os.name == "posix":
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except OSError:
            pass
        proc.wait()
    with _lock:
        _live.discard(proc)


def _dot_folder(program: str) -> str:
    """A private folder whose `dot` runs `program` (a link, or a copy where links fail)."""
    with _lock:
        folder = _bin.get(program)
        if folder is None:
            folder = tempfile.mkdtemp(prefix="optdbg-dot-")
            atexit.register(shutil.rmtree, folder, True)
            name = "dot.exe" if os.name == "nt" else "dot"
            try:
                os.symlink(os.path.abspath(program), os.path.join(folder, name))
            except OSError:
                shutil.copy2(program, os.path.join(folder, name))
            _bin[program] = folder
        return folder


atexit.register(cancel_renders)


# ------------------------------------------------------------------ the worker


def _png_dpi(dot: bytes) -> float | None:
    """A dpi that keeps the PNG within MAX_SIDE and MAX_AREA (None: the default 96 fits)."""
    import graphviz

    first = graphviz.pipe("dot", "plain", dot, quiet=True).split(b"\n", 1)[0].split()
    if len(first) < 4 or first[0] != b"graph":
        return None
    width, height = float(first[2]), float(first[3])
    dpi = min(
        96.0, MAX_SIDE / max(width, height, 1e-9), math.sqrt(MAX_AREA / max(width * height, 1e-9))
    )
    return None if dpi >= 96.0 else max(40.0, dpi)


def _main(fmt: str) -> int:
    """Render DOT from stdin to stdout; on failure one line on stderr and exit status 1."""
    import graphviz

    dot = sys.stdin.buffer.read()
    try:
        if fmt == "png":
            dpi = _png_dpi(dot)
            if dpi is not None:
                dot = dot.replace(b"  graph [", f"  graph [dpi={dpi:.0f} ".encode(), 1)
        sys.stdout.buffer.write(graphviz.pipe("dot", fmt, dot, quiet=True))
    except graphviz.CalledProcessError as e:
        lines = (e.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        print(f"failed: {lines[-1] if lines else f'exit status {e.returncode}'}", file=sys.stderr)
        return 1
    except (graphviz.ExecutableNotFound, OSError) as e:
        print(f"could not run: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
