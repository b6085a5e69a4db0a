"""`optdbg serve`: the TUI in a web browser through textual-serve.

The server runs as a real subprocess on a free loopback port. One test drives it from a
real headless Chromium (Debian's package, driven by Playwright: `.ci/run` installs both);
the screen the page shows is rebuilt from the bytes its terminal received (pyte, a
terminal emulator), since xterm.js draws on a canvas. Another test talks HTTP and the
websocket protocol directly. Each checks that stopping the server leaves no process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyte
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT = 180.0
"""Seconds to wait for the app (a tab's app imports torch: slow on a loaded machine)."""
LOADED = "next: forward (f)"
"""The status line once the scenario is loaded."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _session_pids(sid: int) -> list[int]:
    """Live processes of a session (the server was started as its leader)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            fields = entry.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                found.append(int(entry.parent.name))
    return found


class Server:
    """`optdbg serve` in its own session, so everything it starts can be found."""

    def __init__(self, *args: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        optdbg = Path(sys.executable).with_name("optdbg")
        self.proc = subprocess.Popen(
            [str(optdbg), "serve", *args, "--port", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        assert f"open {self.url}" in first, first
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.1)
        raise AssertionError("the server never accepted a connection")

    def processes(self) -> list[int]:
        return _session_pids(self.proc.pid)

    def stop(self, sig: int = signal.SIGINT) -> list[int]:
        """Stop the server as Ctrl-C does; return the processes still alive after it."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        deadline = time.monotonic() + 10
        while (left := self.processes()) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in left:  # never leave them behind, even when the test fails
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        return left


@pytest.fixture
def server() -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(*args: str) -> Server:
        started.append(Server(*args))
        return started[-1]

    yield start
    for s in started:
        s.stop(signal.SIGKILL)


class Screen:
    """A terminal fed with what the app sent: what xterm.js draws, as text."""

    def __init__(self, width: int, height: int) -> None:
        self.screen = pyte.Screen(width, height)
        self.stream = pyte.ByteStream(self.screen)

    def feed(self, data: bytes) -> None:
        self.stream.feed(data)

    def resize(self, width: int, height: int) -> None:
        self.screen.resize(height, width)

    @property
    def text(self) -> str:
        return "\n".join(self.screen.display)


def test_cli_refuses_bad_arguments_and_warns_off_loopback() -> None:
    optdbg = str(Path(sys.executable).with_name("optdbg"))
    bad = subprocess.run(
        [optdbg, "serve", "no_such_scenario"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and "no scenario 'no_such_scenario'" in bad.stderr
    port = subprocess.run(
        [optdbg, "serve", "--port", "70000"], capture_output=True, text=True, timeout=60
    )
    assert port.returncode == 2 and "--port must be between 1 and 65535" in port.stderr
    # 192.0.2.1 is reserved for documentation: never this machine's, so nothing is bound
    other = subprocess.run(
        [optdbg, "serve", "--host", "192.0.2.1", "--port", str(_free_port())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    warning = [line for line in other.stderr.splitlines() if "warning" in line]
    assert len(warning) == 1
    assert "scenario code runs with this server's rights" in warning[0]
    assert "the picker opens built-ins only" in warning[0]
    assert other.returncode == 2 and "cannot listen on 192.0.2.1" in other.stderr


def test_loopback_is_the_default_and_warns_nothing(server: Callable[..., Server]) -> None:
    from optdbg.tui.serve import DEFAULT_HOST, is_loopback

    assert DEFAULT_HOST == "127.0.0.1"
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10")


def test_http_and_websocket_endpoints(server: Callable[..., Server]) -> None:
    """Without a browser: the page, its script, and a tab's session over the websocket."""
    import aiohttp

    srv = server("quadratic_bowl")

    async def talk() -> tuple[str, str]:
        async with aiohttp.ClientSession() as http:
            async with http.get(srv.url + "/") as page:
                assert page.status == 200
                html = await page.text()
            assert f"ws://127.0.0.1:{srv.port}/ws" in html and "textual-terminal" in html
            async with http.get(srv.url + "/static/js/textual.js") as script:
                assert script.status == 200 and "WebSocket" in await script.text()
            async with http.get(srv.url + "/no-such-page") as missing:
                assert missing.status == 404
            screen = Screen(100, 30)
            async with http.ws_connect(srv.url + "/ws?width=100&height=30") as ws:

                async def until(text: str) -> bool:
                    deadline = time.monotonic() + WAIT
                    while text not in screen.text:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            return False
                        try:
                            msg = await asyncio.wait_for(ws.receive(), left)
                        except TimeoutError:
                            return False
                        if msg.type == aiohttp.WSMsgType.BINARY:
                            screen.feed(msg.data)
                        elif msg.type != aiohttp.WSMsgType.TEXT:
                            return False  # closed
                    return True

                assert await until(LOADED), screen.text
                await ws.send_str(json.dumps(["ping", "42"]))
                await ws.send_str(json.dumps(["stdin", "f"]))
                assert await until("loss = 201"), screen.text
                await ws.send_str(json.dumps(["stdin", "b"]))
                assert await until("t.grad = [14, 24]"), screen.text
                shown = screen.text
                await ws.send_str(json.dumps(["stdin", "q"]))
                while (msg := await ws.receive(timeout=WAIT)).type in (BINARY, TEXT):
                    pass  # the app's last frames
                return shown, msg.type

    BINARY, TEXT = aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT
    shown, closed = asyncio.run(talk())
    assert "Quadratic bowl" in shown
    # q quits the tab's app, and the server closes its socket
    assert closed in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert srv.stop() == []


@pytest.mark.skipif(
    not shutil.which(CHROMIUM) and not os.environ.get("CI"),
    reason="needs Debian's chromium (apt-get install chromium; .ci/run installs it)",
)
def test_browser_drives_the_tui(server: Callable[..., Server], tmp_path: Path) -> None:
    """A real headless Chromium: the page loads, keys reach the app (each tab its own),
    the screen shows the loss after f and the grad after b; stopping leaves nothing."""
    from playwright import sync_api

    srv = server("quadratic_bowl")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh --user-data-dir
            executable_path=CHROMIUM,
            args=CHROMIUM_FLAGS,
            headless=True,
            viewport={"width": 1280, "height": 800},
        )
        try:
            first, first_screen = _open_tab(browser, srv.url)
            second, second_screen = _open_tab(browser, srv.url)
            for page, screen in ((first, first_screen), (second, second_screen)):
                _wait_for(page, screen, LOADED)
            first.locator(".xterm-helper-textarea").focus()
            first.keyboard.press("f")
            _wait_for(first, first_screen, "loss = 201")
            first.keyboard.press("b")
            _wait_for(first, first_screen, "t.grad = [14, 24]")
            assert "loss 201" in first_screen.text  # the status line
            first.screenshot(path=str(tmp_path / "browser.png"))
            # the other tab is its own session: nothing happened there
            assert "loss —" in second_screen.text and "next: forward (f)" in second_screen.text
            assert len(srv.processes()) == 3  # the server and one app per tab
            first.keyboard.press("q")
            first.wait_for_selector("body.-closed", timeout=WAIT * 1000)
        finally:
            browser.close()
    # the second tab's app is still running: stopping the server must end it too
    assert srv.stop() == []


def _open_tab(browser: object, url: str) -> tuple[object, Screen]:
    """A new tab on the server, with the screen its terminal shows rebuilt from its bytes."""
    page = browser.new_page()  # type: ignore[attr-defined]
    screen = Screen(80, 24)

    def on_websocket(ws: object) -> None:
        query = dict(p.split("=") for p in ws.url.split("?", 1)[1].split("&"))  # type: ignore[attr-defined]
        screen.resize(int(query["width"]), int(query["height"]))

        def sent(payload: str | bytes) -> None:
            message = json.loads(payload) if isinstance(payload, str) else None
            if message and message[0] == "resize":
                screen.resize(message[1]["width"], message[1]["height"])

        def received(payload: str | bytes) -> None:
            if isinstance(payload, bytes):
                screen.feed(payload)

        ws.on("framesent", sent)  # type: ignore[attr-defined]
        ws.on("framereceived", received)  # type: ignore[attr-defined]

    page.on("websocket", on_websocket)
    page.goto(url)
    page.wait_for_selector(".textual-terminal.-connected", timeout=WAIT * 1000)
    return page, screen


def _wait_for(page: object, screen: Screen, text: str) -> None:
    deadline = time.monotonic() + WAIT
    while text not in screen.text:
        assert time.monotonic() < deadline, f"{text!r} never shown:\n{screen.text}"
        page.wait_for_timeout(200)  # type: ignore[attr-defined]
