"""Helpers for driving OptDbgApp with Pilot (imported by the TUI and snapshot tests)."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import DataTable
from textual.widgets.tree import TreeNode

from optdbg.tui.app import OptDbgApp
from optdbg.tui.widgets import LogPanel, StatusBar


async def settle(pilot: Pilot[None]) -> None:
    """Wait until queued ops and loads have finished and their messages are handled."""
    app = pilot.app
    assert isinstance(app, OptDbgApp)
    for _ in range(400):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not app.busy and not app.workers:
            return
    raise AssertionError("the app did not settle")


def row(app: OptDbgApp, name: str) -> list[str]:
    table = app.query_one(DataTable)
    return [str(cell) for cell in table.get_row(name)]


def status(app: OptDbgApp) -> str:
    return str(app.query_one(StatusBar).render())


def log_text(app: OptDbgApp) -> str:
    return " ".join(" ".join(strip.text for strip in app.query_one(LogPanel).lines).split())


async def press(pilot: Pilot[None], *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await settle(pilot)


def tree_labels(root: TreeNode[str]) -> list[str]:
    """The labels of every node of a tree, as plain text (depth first)."""
    found, stack = [], [root]
    while stack:
        node = stack.pop()
        found.append(str(node.label))
        stack.extend(node.children)
    return found
