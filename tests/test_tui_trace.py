"""The paused trace TUI, driven with Pilot through real training scripts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from textual.pilot import Pilot

from optdbg.tui.trace_app import TraceApp, TraceStatus
from optdbg.tui.widgets import HistoryPanel, LogPanel, ParamsPanel, UpdatePanel

SCRIPTS = Path(__file__).parent / "trace_scripts"
SIZE = (100, 32)


async def paused(pilot: Pilot[int], count: int | None = None, ended: bool = False) -> None:
    """Wait until the script waits at an op (after `count` ops, when given) or has ended."""
    app = pilot.app
    assert isinstance(app, TraceApp)
    for _ in range(2000):
        await pilot.pause(0.02)
        p = app.paused
        if p is None:
            continue
        if ended and p.ended is not None:
            return
        if not ended and p.pending is not None and (count is None or len(p.events) == count):
            return
    raise AssertionError(f"the script did not pause (last: {app.paused and app.paused.reason})")


def status(app: TraceApp) -> str:
    return str(app.query_one(TraceStatus).render())


async def log_text(pilot: Pilot[int]) -> str:
    """The log panel's text (shown first: a hidden RichLog renders nothing)."""
    app = pilot.app
    assert isinstance(app, TraceApp)
    app.panel = "log"
    await pilot.pause()
    return " ".join(" ".join(strip.text for strip in app.query_one(LogPanel).lines).split())


async def restart(pilot: Pilot[int], run_to: int | None) -> None:
    """`r`, then the op to pause before (None: the dialog's default, the current op)."""
    await pilot.press("r")
    await pilot.pause()
    if run_to is not None:
        pilot.app.screen.query_one("#run-to").value = str(run_to)  # type: ignore[attr-defined]
    await pilot.press("enter")


def plain_json(script: str, *args: str) -> list[dict[str, object]]:
    """The records of the same script under `optdbg trace --json`, the reference."""
    optdbg = Path(sys.executable).parent / "optdbg"
    out = subprocess.run(
        [str(optdbg), "trace", "--json", str(SCRIPTS / script), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        check=True,
    )
    return [json.loads(line) for line in out.stdout.splitlines()]


async def test_step_by_step_then_restart() -> None:
    app = TraceApp(script=SCRIPTS / "gan.py", args=["--iters", "2"])
    async with app.run_test(size=SIZE) as pilot:
        await paused(pilot, 0)
        text = status(app)
        assert "paused before: zero_grad of optD at gan.py:25 (main)" in text
        assert "first op" in text
        params = app.query_one(ParamsPanel)
        assert params.snapshot is not None
        assert {p.name.split(".")[0] for p in params.snapshot.params} == {"netD", "netG"}
        for count in range(1, 5):
            await pilot.press("n")
            await paused(pilot, count)
        assert "paused before: zero_grad of optG at gan.py:33" in status(app)
        assert app.paused is not None
        ops = [e.op for e in app.paused.events]
        assert ops == ["zero_grad", "backward", "backward", "step"]
        timeline = app.query_one(HistoryPanel).timeline
        assert [e.summary.split()[0] for e in timeline] == [
            "gan.py:25",
            "gan.py:27",
            "gan.py:30",
            "gan.py:31",
        ]
        # the script's values at this point are the plain run's, bit for bit
        reference = plain_json("gan.py", "--iters", "2")
        snap = app.paused.snapshot
        expected = reference[3]["params"]
        for p in snap.params:
            if p.value.is_small:
                assert p.value.values == expected[p.name]
        # the Update panel: optD's rule with the step's numbers, which are the plain run's
        update = "\n".join(app.query_one(UpdatePanel).lines)
        assert "optD (Adam): step at op 3, gan.py:31" in update
        assert "m ← β1·m + (1−β1)·g" in update and "lr·m̂/(√v̂ + ε)" in update
        (step,) = app.paused.steps
        for u in step.updates:
            if u.after.is_small:
                assert u.after.values == expected[u.name]
        # the Parameters table's Δ: what optD's step changed (the plain run's after - before)
        before = reference[2]["params"]
        for p in snap.params:
            if p.name.startswith("netG"):
                assert p.last_update is None  # optG has not stepped
            else:
                assert p.last_update is not None
                if p.last_update.is_small:
                    delta = torch.tensor(expected[p.name]) - torch.tensor(before[p.name])
                    assert p.last_update.values == delta.tolist()
        # each loss its own series, by the script's name for it; the graph has its flow
        losses = dict(app.paused.losses)
        assert list(losses) == ["errD_real", "errD_fake"]
        assert [losses["errD_real"][0], losses["errD_fake"][0]] == [
            reference[1]["loss"],
            reference[2]["loss"],
        ]
        assert app.paused.graph is not None and app.paused.graph.has_flow
        assert "Loss_D" not in await log_text(pilot)  # nothing printed before the first step of G
        await restart(pilot, 0)
        await paused(pilot, 0)
        assert app.paused.run == 1
        assert "first op" in status(app)
        assert "restarted gan.py" in await log_text(pilot)
        await pilot.press("c")
        await paused(pilot, ended=True)
        assert app.paused.ended == 0
        assert len(app.paused.events) == 14
        assert "[1] Loss_D:" in await log_text(pilot)  # the script's prints are in the log
        assert "ended with status 0" in status(app)


async def test_continue_stops_at_the_forgotten_zero_grad() -> None:
    app = TraceApp(script=SCRIPTS / "forgot_zero_grad.py", args=["--epochs", "2"])
    async with app.run_test(size=SIZE) as pilot:
        await paused(pilot, 0)
        await pilot.press("c")
        await paused(pilot)
        assert app.paused is not None
        assert "warning grad-accumulated at op 2" in status(app)
        warned = app.paused.events[2]
        assert warned.op == "backward" and warned.codes()[0] == "grad-accumulated"
        assert "(model.0.weight, model.0.bias, model.2.weight, model.2.bias) were the sum of 2" in (
            await log_text(pilot)
        )
        await pilot.press("q")
    assert app.return_code == 0


async def test_breakpoint_on_where() -> None:
    app = TraceApp(script=SCRIPTS / "lbfgs.py", args=["2"])
    async with app.run_test(size=SIZE) as pilot:
        await paused(pilot, 0)
        await pilot.press("k")
        await pilot.pause()
        dialog = app.screen
        dialog.query_one("#cond").value = "where == 'lbfgs.py:23'"  # type: ignore[attr-defined]
        dialog.query_one("#on-warning").value = False  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("c")
        await paused(pilot)
        assert app.paused is not None
        last = app.paused.events[-1]
        assert last.op == "step"
        assert "breakpoint where == 'lbfgs.py:23'" in status(app)
        assert app.paused.events.index(last) == len(app.paused.events) - 1


async def test_restart_fast_forwards_a_deterministic_script_to_the_op() -> None:
    app = TraceApp(script=SCRIPTS / "gan.py", args=["--iters", "2"])
    async with app.run_test(size=SIZE) as pilot:
        await paused(pilot, 0)
        for count in range(1, 6):
            await pilot.press("n")
            await paused(pilot, count)
        assert app.paused is not None
        first = app.paused.snapshot
        await restart(pilot, None)  # the dialog offers the current op, 5
        await paused(pilot, 5)
        assert app.paused.run == 1
        assert "fast-forwarded to op 5" in status(app)
        assert "paused before: backward at gan.py:37" in status(app)
        assert app.paused.snapshot.params == first.params  # the same values, bit for bit
        assert all(not e.warnings for e in app.paused.events)
        await pilot.press("c")
        await paused(pilot, ended=True)
        assert app.paused.ended == 0


async def test_restart_of_a_script_that_is_not_deterministic_stops_at_the_divergence(
    tmp_path: Path,
) -> None:
    script = tmp_path / "unseeded.py"
    script.write_text(
        "import torch\n"
        "w = torch.ones(3, requires_grad=True)\n"
        "opt = torch.optim.SGD([w], lr=0.1)\n"
        "for _ in range(3):\n"
        "    opt.zero_grad()\n"
        "    x = torch.randn(8, 3)  # no seed: other data on every run\n"
        "    ((x @ w - 1) ** 2).mean().backward()\n"
        "    opt.step()\n"
    )
    app = TraceApp(script=script, args=[])
    async with app.run_test(size=SIZE) as pilot:
        await paused(pilot, 0)
        await pilot.press("c")
        await paused(pilot, ended=True)
        await restart(pilot, 6)
        await paused(pilot, 2)  # stopped after op 1, the first loss, which differs
        assert app.paused is not None
        assert "replay-diverged at op 1" in status(app)
        event = app.paused.events[1]
        assert event.op == "backward" and event.codes() == ("replay-diverged",)
        assert "differs from its previous run at op 1: loss" in event.warnings[0].message
        assert "replay-diverged" in await log_text(pilot)


async def test_commands_go_through_the_debugger_and_d_diagnoses(tmp_path: Path) -> None:
    from optdbg.engine import debugger as dbg
    from optdbg.tui.dialogs import DiagnosticsScreen

    script = tmp_path / "bowl.py"
    script.write_text(
        "import torch\n"
        "t = torch.tensor([10.0, 10.0], requires_grad=True)\n"
        "opt = torch.optim.SGD([t], lr=0.1)\n"
        "for _ in range(3):\n"
        "    loss = ((t - 3) ** 2).sum()\n"
        "    loss.backward()\n"  # no zero_grad: grad-accumulated at the second step
        "    opt.step()\n"
    )
    app = TraceApp(script=script, args=[])
    async with app.run_test(size=SIZE) as pilot:
        await paused(pilot, 0)
        debugger = app.debugger
        refused = debugger.execute(dbg.Perform("f"))
        assert isinstance(refused, dbg.Refused) and "not available in trace" in refused.text
        bad = debugger.execute(dbg.ContinueUntil("loss <"))
        assert isinstance(bad, dbg.Refused) and "invalid condition" in bad.text
        await pilot.press("c")  # until the first warning
        await paused(pilot)
        assert app.paused is not None and "warning grad-accumulated" in app.paused.reason
        assert debugger.execute(dbg.Perform("next")) is None  # released: a Paused follows
        await paused(pilot, len(app.paused.events) + 1)
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, DiagnosticsScreen)
        assert "grad-accumulated" in [d.code for d in app.screen.diagnoses]
