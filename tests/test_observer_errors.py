"""An observer that fails (graph extraction, pitfall detectors, undo history) never breaks an
op: the op completes with the values of a plain loop, and the failure is a fact of that op,
shown in the log, a toast, the graph panel and `optdbg run`'s text and JSON.

The triggers are real objects that read fine at load and raise once the loop ran
(tests/data/observers_fail.py), and a real sparse embedding for the tracer (PyTorch has no
norm of a sparse gradient, which the detectors measure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from pilot_helpers import log_text, press, settle
from plain import PlainLoop

from optdbg.engine import Session
from optdbg.engine.debugger import Perform, Performed, Select
from optdbg.engine.debugger.facade import Debugger
from optdbg.engine.trace.tracer import Tracer
from optdbg.tui.app import OptDbgApp
from optdbg.tui.cli import main
from optdbg.tui.graphview import GraphPanel
from optdbg.tui.trace_app import TraceApp
from optdbg.tui.widgets import LogPanel

SCENARIO = Path(__file__).parent / "data" / "observers_fail.py"
GRAPH = "graph: extraction failed: RuntimeError: parameters listed after forward"
DETECTORS = "pitfall detectors failed (this op's warnings may be incomplete): LookupError"
HISTORY = "undo history: a checkpoint could not be taken"


def opened() -> Session:
    session = Session.open(SCENARIO)
    session.history.every = 1  # a checkpoint before every forward (the scheduler breaks it)
    session.capture_graph = True
    return session


def same_state(session: Session, words: str) -> None:
    loop = PlainLoop.load(SCENARIO)
    for word in words.split():
        loop.op(word)
    for (name, p), q in zip(session.scenario.params, loop.params(), strict=True):
        assert torch.equal(p, q), name
        assert (p.grad is None) == (q.grad is None), name
        assert p.grad is None or torch.equal(p.grad, q.grad), name


def test_each_failure_is_a_fact_of_its_op_and_the_values_stay_exact() -> None:
    session = opened()
    events = [e for _ in range(3) for w in "fbsz" for e in session.perform(w)]
    assert all(e.ok for e in events)
    assert events[0].observer_errors == (GRAPH,)  # the first forward: only the graph
    assert events[1].observer_errors == ()  # not tried again for the same loss
    later = events[4].observer_errors  # the second forward: all three
    assert len(later) == 3
    assert later[0].startswith(HISTORY) and "scheduler state unavailable" in later[0]
    assert later[1].startswith(DETECTORS)
    assert later[2] == GRAPH
    assert [bool(e.observer_errors) for e in events] == [True, False, False, False] * 3
    assert session.graph() is None and session.graph_error == GRAPH
    same_state(session, "f b s z " * 3)
    undo = session.undo(2)
    assert undo.ok and any(f.startswith(HISTORY) for f in undo.observer_errors)
    same_state(session, "f b s z f b s z f b")


def test_the_view_says_why_the_graph_is_missing() -> None:
    debugger = Debugger(opened())
    outcome = debugger.execute(Perform("f"))
    assert isinstance(outcome, Performed) and outcome.view is not None
    assert outcome.events[0].observer_errors == (GRAPH,)
    assert outcome.view.graph is None and outcome.view.graph_error == GRAPH


def test_run_prints_the_failure_and_puts_it_in_the_json_record(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def run(*flags: str) -> str:
        argv = ["run", str(SCENARIO), "--ops", "f b s z", "--repeat", "2", *flags]
        assert main(argv) == 0
        return capsys.readouterr().out

    lines = run().splitlines()
    at = next(i for i, line in enumerate(lines) if line.split()[:2] == ["4", "forward"])
    assert lines[at + 1].strip().startswith(f"observer failed: {DETECTORS}")
    assert "observer failed" not in "\n".join(lines[:at])
    records = [json.loads(line) for line in run("--json").splitlines()]
    assert [r.get("observer_errors", []) for r in records][:4] == [[]] * 4
    (failure,) = records[4]["observer_errors"]
    assert failure.startswith(DETECTORS)
    loop = PlainLoop.load(SCENARIO)
    for word in ("f", "b", "s", "z", "f"):
        loop.op(word)
    assert records[4]["loss"] == loop.loss.item()  # type: ignore[union-attr]
    assert run("--quiet").strip().endswith("ops whose observers failed: 1")


async def test_the_tui_shows_it_in_the_log_a_toast_and_the_graph_panel() -> None:
    app = OptDbgApp(opened())
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        await settle(pilot)
        await press(pilot, "f")
        assert GRAPH in log_text(app)
        toasts = [n.message for n in app._notifications]
        assert any(GRAPH in t for t in toasts), toasts
        panel = app.query_one(GraphPanel)
        assert panel.error == GRAPH
        assert GRAPH in str(panel.query_one("#node-details-text").render())
        assert "its extraction failed" in str(panel.tree.root.label)  # not "no loss yet"
        await press(pilot, "b", "s", "z", "f")
        text = log_text(app)
        assert DETECTORS in text and HISTORY in text
        assert app.view is not None and app.view.snapshot.op_count == 5
        debugger = app.debugger
        assert debugger is not None
        same_state(debugger.session, "f b s z f")
        assert debugger.execute(Select()).view is not None


def test_the_tracer_puts_the_detectors_failure_on_its_op() -> None:
    def train() -> tuple[torch.nn.Embedding, list[float]]:
        torch.manual_seed(0)
        emb = torch.nn.Embedding(10, 3, sparse=True)
        optimizer = torch.optim.SGD(emb.parameters(), lr=0.1)
        idx = torch.tensor([1, 2, 4])
        losses = []
        for _ in range(2):
            optimizer.zero_grad()
            loss = emb(idx).pow(2).sum()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return emb, losses

    plain_emb, plain_losses = train()
    tracer = Tracer(detail=True)
    with tracer:
        emb, losses = train()
    assert losses == plain_losses and torch.equal(emb.weight, plain_emb.weight)
    backward = [e for e in tracer.events if e.op == "backward"]
    assert all(
        any(f.startswith("pitfall detectors failed") for f in e.observer_errors) for e in backward
    )
    assert all(len(f) < 400 for e in backward for f in e.observer_errors)  # one line, cut
    records = list(tracer.records_so_far())
    assert [r["op"] for r in records if "observer_errors" in r] == ["backward", "backward"]


SPARSE_SCRIPT = """\
import torch

torch.manual_seed(0)
emb = torch.nn.Embedding(10, 3, sparse=True)
optimizer = torch.optim.SGD(emb.parameters(), lr=0.1)
idx = torch.tensor([1, 2, 4])
for _ in range(2):
    optimizer.zero_grad()
    loss = emb(idx).pow(2).sum()
    loss.backward()
    optimizer.step()
"""


async def test_the_trace_tui_shows_it_in_the_log_and_a_toast(tmp_path: Path) -> None:
    script = tmp_path / "sparse.py"
    script.write_text(SPARSE_SCRIPT)
    app = TraceApp(script=script, args=[])
    async with app.run_test(size=(100, 32), notifications=True) as pilot:
        for count in (0, 1, 2):
            for _ in range(2000):
                await pilot.pause(0.02)
                p = app.paused
                if p is not None and p.pending is not None and len(p.events) == count:
                    break
            else:
                raise AssertionError(f"the script did not pause after {count} ops")
            if count < 2:
                await pilot.press("n")
        assert app.paused is not None
        (backward,) = [e for e in app.paused.events if e.op == "backward"]
        assert backward.observer_errors
        app.panel = "log"
        await pilot.pause()
        log = " ".join(" ".join(s.text for s in app.query_one(LogPanel).lines).split())
        assert "pitfall detectors failed" in log
        toasts = [n.message for n in app._notifications]
        assert any("pitfall detectors failed" in t for t in toasts), toasts


def test_export_says_the_extraction_failed_not_that_there_is_no_loss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["export", str(SCENARIO), "--ops", "f", "-o", "g.dot"]) == 2
    err = capsys.readouterr().err
    assert f"optdbg: op 0 (forward): {GRAPH}" in err
    assert f"no graph to export: {GRAPH}" in err
    assert list(tmp_path.iterdir()) == []
