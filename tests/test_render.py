"""Rendering through the graphviz package in a worker optdbg can stop (engine/render.py).

The renderers here are small Python programs standing in for `dot` so the test can see
how they were called and can make one hang; the real graphviz-pure renders are tested in
test_export.py. A hanging render must be killed with its `dot` on a timeout, on a cancel
and when the TUI quits.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from pilot_helpers import settle

from optdbg.engine import Session
from optdbg.engine.render import cancel_renders, render
from optdbg.tui.app import OptDbgApp


def fake_dot(folder: Path, body: str) -> Path:
    """An executable that acts as `dot`: records its arguments and pid, then runs `body`."""
    script = folder / "fake-dot"
    script.write_text(
        f"#!{sys.executable}\n"
        "import os, sys, time\n"
        f"open({str(folder / 'args')!r}, 'w').write(' '.join(sys.argv[1:]))\n"
        f"open({str(folder / 'pid')!r}, 'w').write(str(os.getpid()))\n"
        "data = sys.stdin.buffer.read()\n" + body,
        encoding="utf-8",
    )
    script.chmod(0o755)
    return script


def dead(pid: int) -> bool:
    """True once the process is gone (a zombie waiting for a reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def wait_for(condition: object, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


HANG = "time.sleep(600)\n"


def test_the_graphviz_package_builds_the_call(tmp_path: Path) -> None:
    dot = fake_dot(tmp_path, "sys.stdout.buffer.write(b'<svg>' + data + b'</svg>')\n")
    out = render("digraph { a -> b }", "svg", str(dot), timeout=60)
    assert out == b"<svg>digraph { a -> b }</svg>"
    # graphviz.pipe's own command line: the layout engine and the format flags
    assert (tmp_path / "args").read_text() == "-Kdot -Tsvg"


def test_a_failing_renderer_says_its_last_line(tmp_path: Path) -> None:
    dot = fake_dot(tmp_path, "sys.stderr.write('Error: syntax error in line 1\\n'); sys.exit(3)\n")
    with pytest.raises(RuntimeError, match="failed: Error: syntax error in line 1"):
        render("digraph {", "svg", str(dot), timeout=60)
    with pytest.raises(RuntimeError, match="was not found"):
        render("digraph {}", "svg", str(tmp_path / "nope"), timeout=60)


def test_a_render_past_its_time_is_killed_with_its_dot(tmp_path: Path) -> None:
    dot = fake_dot(tmp_path, HANG)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="took more than 2 s"):
        render("digraph {}", "svg", str(dot), timeout=2)
    with pytest.raises(RuntimeError, match="took more than 4 s"):  # two layouts: 2 s each
        render("digraph {}", "png", str(dot), timeout=2)
    assert time.monotonic() - start < 60
    pid = int((tmp_path / "pid").read_text())
    assert wait_for(lambda: dead(pid), 10)  # SIGKILL is delivered, not awaited


def test_cancel_renders_kills_a_running_render(tmp_path: Path) -> None:
    dot = fake_dot(tmp_path, HANG)
    errors: list[BaseException] = []

    def job() -> None:
        try:
            render("digraph {}", "svg", str(dot), timeout=600)
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=job)
    thread.start()
    assert wait_for(lambda: (tmp_path / "pid").exists())
    assert cancel_renders() == 1
    thread.join(30)
    assert not thread.is_alive()
    assert "stopped" in str(errors[0])
    pid = int((tmp_path / "pid").read_text())
    assert wait_for(lambda: dead(pid), 10)  # SIGKILL is delivered, not awaited
    assert cancel_renders() == 0


@pytest.mark.parametrize("key", ["escape", "q"])
async def test_the_tui_kills_a_hanging_export_on_cancel_and_quit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    monkeypatch.setenv("OPTDBG_DOT", str(fake_dot(tmp_path, HANG)))
    monkeypatch.chdir(tmp_path)
    app = OptDbgApp(Session.open("dag_toy"))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("f")
        await settle(pilot)
        await pilot.press("e")
        pid_file = tmp_path / "pid"
        for _ in range(600):
            if pid_file.exists():
                break
            await pilot.pause(0.05)
        pid = int(pid_file.read_text())
        assert not dead(pid)
        for _ in range(600):  # escape is offered once the job has run 0.5 s
            if app.check_action("cancel", ()):
                break
            await pilot.pause(0.05)
        await pilot.press(key)
        for _ in range(600):
            if dead(pid):
                break
            await pilot.pause(0.05)
        assert dead(pid)
        if key == "escape":
            await settle(pilot)
            assert app.is_running
            assert not list(tmp_path.glob("*.png"))
    assert os.path.exists(tmp_path / "args")
