"""Drive the real app with Pilot and assert on what the panels show."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pilot_helpers import log_text, press, row, settle, status, tree_labels
from textual.pilot import Pilot
from textual.widgets import DataTable

from optdbg.engine import Session
from optdbg.tui.app import OptDbgApp
from optdbg.tui.graphview import GraphTree
from optdbg.tui.screens import HelpScreen, PickerScreen
from optdbg.tui.widgets import UpdatePanel

WIDE, NARROW = (160, 48), (80, 24)


async def test_bowl_forward_backward_step_and_forgotten_zero_grad() -> None:
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        assert row(app, "t")[2:4] == ["[10, 10]", "None"]
        await press(pilot, "f")
        assert "loss 201" in status(app)
        await press(pilot, "b")
        assert row(app, "t")[3] == "[14, 24]"
        await press(pilot, "s")
        value, grad, acc, delta = row(app, "t")[2:]
        assert (value, grad, acc, delta) == ("[8.6, 7.6]", "[14, 24]", "1", "[-1.4, -2.4]")
        rule = "\n".join(app.query_one(UpdatePanel).lines)
        assert "t ← t − lr·grad" in rule
        assert "= [10, 10] − 0.1·[14, 24]" in rule and "= [8.6, 7.6]" in rule
        await press(pilot, "f", "b")
        assert row(app, "t")[3:5] == ["[25.2, 43.2]", "2×⚠"]
        assert "grad-accumulated" in status(app)
        assert "sum of 2 backward passes" in log_text(app)
        notes = [n.message for n in app._notifications]
        assert any("zero_grad()" in n for n in notes)


async def test_zero_grad_shows_none_and_resets_accumulation() -> None:
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "f", "b", "z")
        assert row(app, "t")[3:5] == ["None", "–"]
        assert "next: forward (f)" in status(app)


async def test_keys_pressed_while_busy_are_queued_not_lost() -> None:
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        for key in "fbszfbsz":
            await pilot.press(key)
        await settle(pilot)
        assert app.view is not None
        assert app.view.snapshot.op_count == 8
        assert app.view.snapshot.step_count == 2
        assert "#7" in log_text(app)


async def test_next_and_iteration_keys() -> None:
    app = OptDbgApp(Session.open("dag_toy"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "n", "n")
        assert "next: step (s)" in status(app)
        await press(pilot, "n", "n", "i")
        assert app.view is not None and app.view.snapshot.step_count == 2
        assert row(app, "b")[2] == "3.6"


async def test_refused_backward_is_explained_and_the_app_stays_usable() -> None:
    app = OptDbgApp(Session.open("mlp_sequential"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "f", "b")
        grads_before = [row(app, p.name)[3] for p in app.view.snapshot.params]  # type: ignore[union-attr]
        await press(pilot, "b")
        text = log_text(app)
        assert "RuntimeError" in text and "Run forward (f) again" in text
        assert [row(app, p.name)[3] for p in app.view.snapshot.params] == grads_before  # type: ignore[union-attr]
        await press(pilot, "f", "s")
        assert app.view is not None and app.view.snapshot.step_count == 1


async def test_backward_before_forward_is_refused_visibly() -> None:
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "b")
        assert "UsageError" in log_text(app)
        assert any(n.severity == "error" for n in app._notifications)


async def test_graph_panel_shows_the_grad_fn_tree_with_named_leaves() -> None:
    app = OptDbgApp(Session.open("log_xy"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "f")
        text = "\n".join(tree_labels(app.query_one(GraphTree).root))
        for expected in ("SumBackward0", "LogBackward0", "MulBackward0", "● x", "● y"):
            assert expected in text


async def test_shared_nodes_are_shown_once_and_referenced() -> None:
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "f")
        leaves = [label for label in tree_labels(app.query_one(GraphTree).root) if "● t" in label]
        assert len(leaves) == 2
        assert sum("above" in label for label in leaves) == 1


async def test_a_step_that_skips_the_parameter_says_so_not_that_no_step_moved_it() -> None:
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "f", "b")
        assert app.query_one(UpdatePanel).lines == ()  # the panel's hint: no step yet
        await press(pilot, "s", "z", "s")  # the second step finds t.grad None
        said = "\n".join(app.query_one(UpdatePanel).lines)
        assert "The last step (step 2) did not move t: its .grad was None" in said
        assert "yet" not in said
        await press(pilot, "f", "b", "s")
        assert "t ← t − lr·grad" in "\n".join(app.query_one(UpdatePanel).lines)


async def test_selecting_a_parameter_shows_its_update_rule() -> None:
    app = OptDbgApp(Session.open("classifier_adam"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "f", "b", "s")
        first = "\n".join(app.query_one(UpdatePanel).lines)
        assert "model.0.weight" in first and "m ← β1·m" in first and "step t = 1" in first
        app.query_one(DataTable).focus()
        await press(pilot, "down")
        second = "\n".join(app.query_one(UpdatePanel).lines)
        assert "model.0.bias" in second


async def test_large_tensors_show_a_summary_and_full_values_on_selection(tmp_path: Path) -> None:
    path = tmp_path / "big.py"
    path.write_text(
        "import torch\n"
        "w = torch.ones(10, 10, requires_grad=True)\n"
        "optimizer = torch.optim.SGD([w], lr=0.5)\n"
        "def forward():\n"
        "    return (w * w).sum()\n"
    )
    app = OptDbgApp(Session.open(path))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "f", "b")
        assert row(app, "w")[2].startswith("μ 1 σ 0")
        assert row(app, "w")[3].startswith("μ 2 σ 0")
        details = str(app.query_one("#param-details-text").render())
        assert "(10, 10)" in details and "mean 2" in details


async def test_load_error_is_shown_and_reload_recovers(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("import torch\nt = torch.zeros(2, requires_grad=True)\noptimizer = 3\n")
    app = OptDbgApp(scenario=path)
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        assert app.has_class("-failed")
        error = str(app.query_one("#error-text").render())
        assert f"{path}:3" in error and "torch.optim.Optimizer" in error and "fix:" in error
        assert not app.check_action("op", ("forward",))
        path.write_text(
            "import torch\nt = torch.zeros(2, requires_grad=True)\n"
            "optimizer = torch.optim.SGD([t], lr=0.1)\n"
            "def forward():\n    return (t - 1).pow(2).sum()\n"
        )
        await press(pilot, "r")
        assert not app.has_class("-failed")
        await press(pilot, "f")
        assert "loss 2" in status(app)


async def test_picker_opens_the_chosen_builtin() -> None:
    app = OptDbgApp()
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, PickerScreen)
        await press(pilot, "down", "down", "enter")  # the third built-in, alphabetically
        assert app.session is not None and app.session.scenario.name == "dag_toy"
        assert "Computation-graph toy" in status(app)


async def test_help_screen_opens_and_closes() -> None:
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=NARROW) as pilot:
        await press(pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        await press(pilot, "escape")
        assert not isinstance(app.screen, HelpScreen)


@pytest.mark.parametrize(("size", "compact"), [(NARROW, True), ((100, 30), True), (WIDE, False)])
async def test_layout_adapts_to_the_terminal(size: tuple[int, int], compact: bool) -> None:
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        assert app.compact is compact
        visible = [p for p in ("params", "graph", "loss", "log") if app.query_one(f"#{p}").display]
        if compact:
            assert app.query_one("#params").region.height > 0
            await press(pilot, "3")
            assert app.query_one("#graph").region.height > 0
            assert app.query_one("#params").region.height == 0
        else:
            assert visible == ["params", "graph", "loss", "log"]
            assert all(app.query_one(f"#{p}").region.height > 0 for p in visible)


async def test_every_op_is_in_the_command_palette() -> None:
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for title in ("Forward", "Backward", "Step", "Zero grad", "Next", "Iteration"):
            assert title in titles


async def test_footer_shows_op_keys_only_when_a_session_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "empty.py"
    path.write_text("")
    app = OptDbgApp(scenario=path)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        keys = {b.binding.key for b in app.active_bindings.values() if b.enabled}
        assert "r" in keys and "q" in keys
        assert not app.check_action("op", ("forward",))


async def test_export_key_writes_a_png_named_after_scenario_and_op_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    app = OptDbgApp(Session.open("log_xy"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "e")
        assert "press f" in log_text(app)
        await press(pilot, "f", "e")
        png = tmp_path / "log_xy-op1.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert str(png) in log_text(app).replace(" ", "")
        await press(pilot, "e")
        assert (tmp_path / "log_xy-op1-1.png").exists()  # never overwrites


HANGING = """\
import time
import torch
t = torch.tensor([1.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)
def forward():
    {body}
    return (t * t).sum()
"""


async def wait_for(pilot: Pilot[None], condition: Callable[[], bool], seconds: float) -> None:
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not reached")


async def test_a_hanging_forward_shows_elapsed_time_and_can_be_cancelled(tmp_path: Path) -> None:
    path = tmp_path / "hang.py"
    path.write_text(HANGING.format(body="while True:\n        pass"))
    app = OptDbgApp(Session.open(path))
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("f")
        await wait_for(pilot, lambda: "escape: cancel" in status(app), 5)
        assert "forward…" in status(app)
        await pilot.press("escape")
        await settle(pilot)
        assert "OpCancelled" in log_text(app) and "hang.py:6" in log_text(app)
        assert app.view is not None and app.view.snapshot.loss is None
        await press(pilot, "s")  # still usable
        assert app.view.snapshot.op_count == 2


async def test_reload_replaces_a_session_stuck_in_native_code(tmp_path: Path) -> None:
    path = tmp_path / "sleep.py"
    path.write_text(HANGING.format(body="time.sleep(5)"))
    app = OptDbgApp(scenario=path)
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        await pilot.press("f")
        await wait_for(pilot, lambda: "escape: cancel" in status(app), 5)
        await pilot.press("escape")  # cannot interrupt time.sleep: still running
        await pilot.pause(0.2)
        assert app.busy
        path.write_text(HANGING.format(body="pass"))
        await press(pilot, "r")
        await press(pilot, "f")
        assert "loss 1" in status(app)


def test_every_outcome_of_the_facade_has_a_message_class_of_its_own() -> None:
    """The app posts each outcome as the message named after it (`OptDbgApp.message_for`):
    a new outcome without one would be a command whose result never reaches the screen."""
    import typing

    from optdbg.engine import debugger as dbg
    from optdbg.tui.app import OutcomeMessage

    kinds = typing.get_args(dbg.Outcome)
    messages = [getattr(OptDbgApp, kind.__name__, None) for kind in kinds]
    assert len(kinds) >= 9
    assert all(isinstance(m, type) and issubclass(m, OutcomeMessage) for m in messages)
    assert len(set(messages)) == len(kinds)
