"""`optdbg serve`: the TUI in a web browser, one app process per browser tab (textual-serve).

textual-serve runs a web server (aiohttp) whose page draws a terminal (xterm.js); each
websocket, one per tab, starts its own `python -m optdbg.tui [SCENARIO]` with Textual's web
driver, so every tab has its own session. On shutdown (Ctrl-C, SIGTERM) every tab's app is
told to quit, and any that does not exit in time is killed: no process is left behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000
QUIT_GRACE = 3.0
"""Seconds a tab's app gets to quit on shutdown before it is killed."""


def serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optdbg serve",
        description=(
            "Serve the TUI to web browsers (textual-serve): open the printed address; each "
            "browser tab gets its own session. Only this machine can connect unless --host "
            "names another address."
        ),
    )
    parser.add_argument(
        "scenario", nargs="?", help="scenario file or built-in name (default: the picker)"
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}: this machine only; "
        "0.0.0.0 for every network interface)",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})"
    )
    return parser


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def app_command(scenario: str | None) -> str:
    """The shell command textual-serve runs for each tab (exec: no shell stays in between)."""
    args = [sys.executable, "-m", "optdbg.tui"]
    if scenario is not None:
        args.append(scenario)
    return "exec " + shlex.join(args)


def serve_command(argv: list[str]) -> int:
    parser = serve_parser()
    ns = parser.parse_args(argv)
    if not 0 < ns.port < 65536:
        parser.error(f"--port must be between 1 and 65535, not {ns.port}")
    scenario = None
    if ns.scenario is not None:
        from optdbg.engine.builtins import resolve

        path = resolve(ns.scenario)
        if not path.is_file():
            parser.error(f"no scenario {ns.scenario!r}: not a file nor a built-in (see --list)")
        scenario = str(Path(path).resolve())
    if not is_loopback(ns.host):
        print(
            f"optdbg serve: warning: listening on {ns.host}, so other machines can connect; "
            "scenario code runs with this server's rights, and the picker opens built-ins only.",
            file=sys.stderr,
        )
    server = _server(app_command(scenario), ns.host, ns.port)
    try:
        server.serve()
    except OSError as e:  # the port is taken, or the address is not this machine's
        print(
            f"optdbg serve: cannot listen on {ns.host}:{ns.port}: {e.strerror or e}",
            file=sys.stderr,
        )
        return 2
    return 0


def _server(command: str, host: str, port: int) -> Any:
    from textual_serve.server import Server

    class OptDbgServer(Server):
        """textual-serve's server, which also ends every tab's app when it shuts down."""

        def __init__(self) -> None:
            super().__init__(command, host=host, port=port, title="optdbg")
            self._tabs: set[asyncio.Task[Any]] = set()

        async def handle_websocket(self, request: Any) -> Any:
            task = asyncio.current_task()
            assert task is not None
            self._tabs.add(task)
            try:
                return await super().handle_websocket(request)
            finally:
                self._tabs.discard(task)

        async def on_startup(self, app: Any) -> None:
            print(f"optdbg serve: open {self.public_url} in a browser (Ctrl-C to stop)", flush=True)

        async def on_shutdown(self, app: Any) -> None:
            await _end_tabs(self._tabs)

    return OptDbgServer()


async def _end_tabs(tabs: set[asyncio.Task[Any]]) -> None:
    """Tell every tab's app to quit (textual-serve's own stop), then kill what remains."""
    pending = list(tabs)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=QUIT_GRACE)
    for pid in _child_pids():
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    if pending:
        await asyncio.wait(pending, timeout=QUIT_GRACE)


def _child_pids() -> list[int]:
    """This process's children (Linux /proc; elsewhere none are found)."""
    me, found = os.getpid(), []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == me and fields[0] != "Z":
            found.append(int(entry.parent.name))
    return found
