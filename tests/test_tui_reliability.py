"""The TUI's part of the reliability issue: what a scenario does to the process (signal
handlers, torch's global settings) neither breaks the TUI nor leaks into the next scenario;
the slow-motion backward shows what was computed so far; the loss plot and the Parameters
table stay readable whatever the numbers. Each test drives the real app with Pilot.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
import torch
from pilot_helpers import log_text, press, settle, status, tree_labels
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from optdbg.engine import Session, fmt
from optdbg.engine.guard import reset_torch
from optdbg.tui.app import OptDbgApp
from optdbg.tui.graphview import GraphPanel, GraphTree
from optdbg.tui.screens import PickerScreen
from optdbg.tui.widgets import LossPanel, y_ticks

BROKEN = Path(__file__).parent / "broken"


def lines(app: App[None]) -> list[str]:
    return [strip.text for strip in app.screen._compositor.render_strips()]


def details(app: OptDbgApp) -> str:
    return str(app.query_one("#node-details-text").render())


# ----------------------------------------------------------------- signal handlers at load

SIGNALS = '''\
"""Signals: installs SIGINT and SIGALRM handlers at load."""
import signal
import torch

def on_interrupt(signum, frame):
    raise RuntimeError("interrupted")

previous = signal.signal(signal.SIGINT, on_interrupt)
again = signal.signal(signal.SIGINT, on_interrupt)
assert again is on_interrupt, again  # the scenario sees its own handler installed
assert signal.getsignal(signal.SIGINT) is on_interrupt
signal.signal(signal.SIGALRM, signal.SIG_IGN)
t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)

def forward():
    return (t**2).sum()
'''


async def test_signal_handlers_installed_at_load_are_accepted_and_optdbgs_stay(
    tmp_path: Path,
) -> None:
    path = tmp_path / "signals.py"
    path.write_text(SIGNALS)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGALRM)}
    app = OptDbgApp(scenario=path)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert app.session is not None, app.load_error
        assert "python " not in log_text(app)
        note = "signal.signal(SIGINT, on_interrupt) at line 8"
        assert note in log_text(app), log_text(app)
        assert "handlers do not take effect in the TUI" in log_text(app)
        await press(pilot, "f", "b", "s")
        assert "op 3" in status(app)
        t = torch.tensor([1.0, 2.0], requires_grad=True)  # the plain loop
        (t**2).sum().backward()
        torch.optim.SGD([t], lr=0.1).step()
        assert app.view is not None and app.view.snapshot.params[0].value.values == t.tolist()
    assert {sig: signal.getsignal(sig) for sig in handlers} == handlers


async def test_the_broken_alarm_scenario_loads_in_the_tui_and_its_alarm_never_rings() -> None:
    app = OptDbgApp(scenario=BROKEN / "signal_alarm_at_load.py")
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert app.session is not None, app.load_error
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # disarmed after the load
        await asyncio.sleep(1.2)  # past the second it had asked for
        await press(pilot, "f", "b", "s", "z")
        assert "op 4" in status(app) and "alarm rang" not in log_text(app)


# ----------------------------------------------------------------- torch's global settings


async def test_torch_settings_of_one_scenario_do_not_leak_into_the_next_one_opened() -> None:
    threads = torch.get_num_threads()
    app = OptDbgApp(scenario=BROKEN / "torch_globals_at_load.py")
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            assert app.session is not None, app.load_error
            await press(pilot, "f")
            assert app.session.loss is not None and app.session.loss.dtype == torch.float64
            app.action_op("f")  # the picker's choice reloads on a fresh engine thread
            app.pick()
            await settle(pilot)
            assert isinstance(app.screen, PickerScreen)
            app.screen.dismiss("quadratic_bowl")
            await settle(pilot)
            session = app.session
            assert session is not None and session.scenario.name == "quadratic_bowl"
            assert torch.get_default_dtype() == torch.float32
            assert not torch.are_deterministic_algorithms_enabled()
            assert not torch.is_anomaly_enabled()
            assert torch.get_num_threads() == threads
            await press(pilot, "f", "b")
            assert session.loss is not None and session.loss.dtype == torch.float32
            assert app.view is not None and app.view.snapshot.params[0].grad is not None
            assert app.view.snapshot.params[0].grad.values == [14.0, 24.0]
    finally:
        reset_torch()


GRAD_OFF = '''\
"""Turns grad mode off at load, for its own ops."""
import torch
torch.set_grad_enabled(False)
torch.set_default_dtype(torch.float64)
t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)

def forward():
    with torch.enable_grad():
        return (t**2).sum()
'''


async def test_grad_mode_and_dtype_are_reset_when_another_file_is_reloaded(
    tmp_path: Path,
) -> None:
    path = tmp_path / "scenario.py"
    path.write_text(GRAD_OFF)
    app = OptDbgApp(scenario=path)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            assert app.session is not None, app.load_error
            await press(pilot, "f")
            assert app.session.loss is not None and app.session.loss.dtype == torch.float64
            path.write_text((BROKEN.parent.parent / "scenarios" / "quadratic_bowl.py").read_text())
            await press(pilot, "r")
            session = app.session
            assert session is not None and session.scenario.title.startswith("Quadratic")
            assert torch.get_default_dtype() == torch.float32
            await press(pilot, "f", "b")
            assert session.loss is not None and session.loss.dtype == torch.float32
            assert session.loss.requires_grad
            assert app.view is not None and app.view.snapshot.params[0].grad is not None
    finally:
        reset_torch()


# ----------------------------------------------------------------- slow motion


async def test_slow_motion_right_after_backward_replays_it_without_a_second_backward() -> None:
    reference = Session.open("log_xy")
    reference.forward()
    reference.backward()
    expected = [p.grad for p in reference.snapshot().params]

    app = OptDbgApp(Session.open("log_xy"))
    async with app.run_test(size=(160, 48)) as pilot:
        await press(pilot, "f", "b", "B")
        assert app.replay is not None
        assert "backward step 1/5" in details(app) and "SumBackward0" in details(app)
        assert "replaying the backward this loss already had" in log_text(app)
        await press(pilot, "escape")
        assert app.replay is None and app.session is not None
        assert [e.op for e in app.session.events] == ["forward", "backward"]
        assert all(e.ok for e in app.session.events)
        assert app.view is not None and "op 2" in status(app)
        assert [p.grad for p in app.view.snapshot.params] == expected  # not summed twice
        assert "refused" not in log_text(app)
        await press(pilot, "B", "right", "right", "right", "right", "right")
        assert app.replay is None and len(app.session.events) == 2  # replayed again


async def test_slow_motion_after_undoing_the_backward_runs_it_again() -> None:
    app = OptDbgApp(Session.open("log_xy"))
    async with app.run_test(size=(160, 48)) as pilot:
        await press(pilot, "f", "b", "u", "B", "escape")
        assert app.session is not None
        assert [e.op for e in app.session.events] == ["forward", "backward"]
        assert "replaying" not in log_text(app)


def shown_grads(tree: GraphTree) -> dict[str, str]:
    """Per graph node id, the grad its tree label shows ('' when none)."""
    shown = {}
    stack = [tree.root]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        label = str(node.label)
        if node.data is not None and "(shown above)" not in label:
            shown[node.data] = label.split("| grad ")[1] if "| grad " in label else ""
    return shown


@pytest.mark.parametrize("first", ["B", "bB"])
async def test_slow_motion_shows_only_the_grads_computed_up_to_each_step(first: str) -> None:
    app = OptDbgApp(Session.open("log_xy"))
    async with app.run_test(size=(160, 48)) as pilot:
        await press(pilot, "f", *first)
        assert app.replay is not None
        _, steps = app.replay
        graph = app.query_one(GraphPanel).graph
        assert graph is not None and len(steps) == 5
        tree = app.query_one(GraphTree)
        for index, step in enumerate(steps):
            if index:
                await press(pilot, "right")
            assert f"backward step {index + 1}/5" in details(app)
            grads = shown_grads(tree)
            done = {s.node for s in steps[: index + 1]}
            assert {n for n, g in grads.items() if g} == done, (index, grads)
            for node in done:
                flow = graph.flow[node]
                assert grads[node] == fmt.tensor(flow.grad, 4, limit=3), node
            assert step.node in done
        leaves = [s for s in steps if s.is_leaf]
        assert leaves and leaves[-1] == steps[-1]  # the last deposit only at the last step
        await press(pilot, "right")
        assert app.replay is None
        final = shown_grads(tree)
        assert {n for n, g in final.items() if g} == set(graph.flow)  # all, once it ends
        assert any("| grad" in label for label in tree_labels(tree.root))


async def test_slow_motion_in_the_dag_view_shows_the_grads_so_far() -> None:
    app = OptDbgApp(Session.open("log_xy"))
    async with app.run_test(size=(160, 48)) as pilot:
        await press(pilot, "f", "3", "g", "B")
        assert app.replay is not None
        text = "\n".join(lines(app))
        assert text.count("grad ") >= 1
        first = text.count("grad [") + text.count("grad (")
        await press(pilot, "right", "right", "right", "right")
        text = "\n".join(lines(app))
        last = text.count("grad [") + text.count("grad (")
        assert first < last, (first, last)


# ----------------------------------------------------------------- the loss plot


class PlotApp(App[None]):
    def compose(self) -> ComposeResult:
        yield LossPanel()


def y_labels(screen: list[str]) -> list[str]:
    """The plot's y tick labels, as drawn (left of the axis)."""
    return [line.split("┤")[0].strip() for line in screen if "┤" in line]


HUGE = [1.0, 30.0, 1e6, 1e12, 1e24, 1e40]
TINY = [3e-30, 2.5e-30, 2e-30, 1.8e-30]
SIGNED = [-1e30, 5.0, 1e38]


@pytest.mark.parametrize(
    ("losses", "expected"),
    [
        (HUGE, {"1", "1e9", "1e18", "1e27", "1e36"}),
        (TINY, {"1.8e-30", "2.1e-30", "2.4e-30", "2.7e-30", "3e-30"}),
        (SIGNED, {"-1e30", "25e36", "50e36", "75e36", "100e36"}),
        ([4.0, 3.5, 3.25], {"3.25", "3.44", "3.62", "3.81", "4"}),
        ([1000.001, 1000.002], {"1000.001", "1000.0013", "1000.0015", "1000.0017", "1000.002"}),
    ],
)
async def test_loss_plot_labels_stay_short_at_any_magnitude(
    losses: list[float], expected: set[str]
) -> None:
    app = PlotApp()
    async with app.run_test(size=(100, 24)) as pilot:
        app.query_one(LossPanel).history = (tuple(losses), ())
        await pilot.pause()
        await pilot.pause()
        labels = y_labels(lines(app))
    assert labels and all(len(label) <= 9 for label in labels), labels
    assert set(labels) == expected, labels


def test_y_ticks_tell_close_values_apart_and_sit_in_the_range() -> None:
    ticks, labels = y_ticks(1000.001, 1000.002, log=False)
    assert len(set(labels)) == len(labels) == 5, labels
    assert ticks[0] == 1000.001 and ticks[-1] == 1000.002
    ticks, labels = y_ticks(2.0, 2.0e12, log=True)
    assert all(2.0 <= t <= 2.0e12 for t in ticks) and labels[0] == "10", labels
    assert y_ticks(7.0, 7.0, log=False) == ([7.0], ["7"])


# ----------------------------------------------------------------- the Parameters table


def table_fits(app: OptDbgApp) -> list[str]:
    """The Parameters table draws whole within its panel: the text of its rows on screen,
    each row's cells all there (none cut), the Δ cell last before the border."""
    table = app.query_one(DataTable)
    assert table.virtual_size.width <= table.scrollable_content_region.width
    screen = lines(app)
    header = next(line for line in screen if "name" in line and "shape" in line)
    assert "Δ last step" in header, header
    shown = []
    for key in table.rows:
        cells = [str(c) for c in table.get_row(key)]
        row = next(line for line in screen if line.startswith(f"│ {cells[0]} "))
        assert row.split("│")[1].rstrip().endswith(cells[5]), (app.size, screen)
        assert all(cell in row for cell in cells), (row, cells)
        shown.append(row)
    return shown


async def test_parameters_table_fits_the_width_at_100_columns() -> None:
    app = OptDbgApp(Session.open("mlp_sequential"))
    async with app.run_test(size=(100, 30)) as pilot:
        await press(pilot, "f", "b", "s")
        assert app.view is not None
        for row, p in zip(table_fits(app), app.view.snapshot.params, strict=True):
            assert p.last_update is not None
            first = p.last_update.flat()[0]
            assert f"[{fmt.num(first, 3)}" in row or f"[{fmt.num(first, 4)}" in row, row
        for size in ((80, 24), (160, 48), (120, 40), (100, 30)):
            await pilot.resize_terminal(*size)
            await settle(pilot)
            await pilot.pause()
            table_fits(app)


async def test_parameters_table_fits_many_parameters_at_80_columns(tmp_path: Path) -> None:
    path = tmp_path / "many.py"
    path.write_text(
        "import torch\n"
        "model = torch.nn.Sequential(*[torch.nn.Linear(3, 3) for _ in range(12)])\n"
        "optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)\n"
        "def forward():\n"
        "    return model(torch.ones(2, 3)).pow(2).sum() * 1e6\n"
    )
    app = OptDbgApp(scenario=path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "f", "b", "s")
        table = app.query_one(DataTable)
        assert table.row_count == 24
        assert table.virtual_size.width <= table.scrollable_content_region.width
