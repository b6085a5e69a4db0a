"""The debugger façade, driven without Textual: each command and its outcome, refusals as
outcomes (never exceptions), views that are detached copies, and values bit-identical to a
plain PyTorch loop making the same calls (tests/plain.py)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from plain import PlainLoop

from optdbg.engine.compare import make_variants
from optdbg.engine.debugger import (
    Batch,
    Choose,
    CompareView,
    Continued,
    ContinueUntil,
    Diagnose,
    Diagnosed,
    DrawLandscape,
    DrawSlice,
    ExportGraph,
    ExportLandscape,
    ExportLosses,
    Failed,
    Goto,
    Landscape,
    LockstepProgress,
    Noted,
    Perform,
    Performed,
    Progress,
    Redo,
    Refused,
    Select,
    SetHyper,
    SlowBackward,
    SlowMotion,
    Undo,
    View,
    Viewed,
)
from optdbg.engine.debugger.facade import CompareDebugger, Debugger


def values(view: View) -> dict[str, list[float]]:
    return {p.name: p.value.flat() for p in view.snapshot.params}


def grads(view: View) -> dict[str, list[float] | None]:
    return {p.name: p.grad.flat() if p.grad is not None else None for p in view.snapshot.params}


def plain_values(loop: PlainLoop, name: str) -> list[float]:
    (t,) = (t for t in loop.params() if t is loop.ns[name])
    return t.detach().reshape(-1).tolist()


def opened(name: str = "quadratic_bowl", panels: bool = True, records: bool = False) -> Debugger:
    return Debugger.open(name, panels=panels, records=records)


def view_of(outcome: object) -> View:
    view = getattr(outcome, "view", None)
    assert isinstance(view, View), outcome
    return view


# ------------------------------------------------------------------ ops and fidelity


@pytest.mark.parametrize("words", ["f b s z f b s", "i i i", "f b f b s z n n"])
def test_ops_through_the_facade_equal_a_plain_loop_bit_for_bit(words: str) -> None:
    debugger, loop = opened(), PlainLoop.load("quadratic_bowl")
    for word in words.split():
        outcome = debugger.execute(Perform(word))
        assert isinstance(outcome, Performed) and outcome.events, outcome
        assert all(e.ok for e in outcome.events)
        loop.op(word if word != "n" else debugger.session.events[-1].op[0])
        view = view_of(outcome)
        assert values(view)["t"] == plain_values(loop, "t")
        t = loop.ns["t"]
        assert grads(view)["t"] == (t.grad.reshape(-1).tolist() if t.grad is not None else None)
        assert loop.loss is not None and view.snapshot.loss == loop.loss.item()


def test_headless_records_equal_a_plain_loop_and_carry_no_view() -> None:
    debugger, loop = opened(panels=False, records=True), PlainLoop.load("quadratic_bowl")
    for word in ["z", "f", "b", "s", "f", "b", "s"]:
        outcome = debugger.execute(Perform(word))
        assert isinstance(outcome, Performed) and outcome.view is None
        loop.op(word)
        (record,) = outcome.records
        assert record.event is outcome.events[0]
        (name, value, grad), *_ = record.params
        assert name == "t" and value.flat() == plain_values(loop, "t")
        t = loop.ns["t"]
        assert (grad.flat() if grad is not None else None) == (
            t.grad.reshape(-1).tolist() if t.grad is not None else None
        )
    assert not debugger.session.step_detail and not debugger.session.capture_graph
    quiet = opened(panels=False)  # records only when asked (they copy every parameter)
    outcome = quiet.execute(Perform("f"))
    assert isinstance(outcome, Performed) and outcome.events and outcome.records == ()


def test_a_batch_is_the_ops_in_order_with_one_view() -> None:
    one, batched = opened(), opened()
    for word in ("f", "b", "s"):
        last = one.execute(Perform(word))
    outcome = batched.execute(Batch(("f", "b", "s")))
    assert isinstance(outcome, Performed)
    assert [e.op for e in outcome.events] == ["forward", "backward", "step"]
    assert values(view_of(outcome)) == values(view_of(last))


def test_the_view_is_a_detached_copy() -> None:
    debugger = opened()
    view = view_of(debugger.execute(Batch(("f", "b"))))
    before = values(view)
    debugger.execute(Perform("s"))
    assert values(view) == before  # the loop moved on; the old view did not
    assert not any(isinstance(v, torch.Tensor) for v in vars(view).values())
    assert view.graph is not None and view.detail is None and view.selected == "t"


def test_a_refused_op_is_an_event_and_the_state_is_unchanged() -> None:
    debugger = opened()
    outcome = debugger.execute(Perform("b"))  # backward before any forward
    assert isinstance(outcome, Performed)
    (event,) = outcome.events
    assert event.error is not None and event.error.explanation
    assert values(view_of(outcome)) == {"t": [10.0, 10.0]}


# ------------------------------------------------------------------ time travel, hyper


def test_undo_redo_goto_and_set_are_performed_and_logged() -> None:
    debugger = opened()
    after_one = values(view_of(debugger.execute(Perform("i"))))
    debugger.execute(Perform("i"))
    undone = debugger.execute(Undo(4))
    assert isinstance(undone, Performed) and undone.events[0].op == "undo"
    assert values(view_of(undone)) == after_one
    redone = debugger.execute(Redo(4))
    assert isinstance(redone, Performed) and view_of(redone).snapshot.op_count == 8
    jumped = debugger.execute(Goto(3))
    assert isinstance(jumped, Performed) and values(view_of(jumped)) == after_one
    assert view_of(jumped).future_losses  # the undone forward: what redo replays
    set_lr = debugger.execute(SetHyper(0, "lr", "0.25"))
    assert isinstance(set_lr, Performed) and set_lr.events[0].op == "set"
    assert view_of(set_lr).snapshot.groups[0]["lr"] == 0.25
    assert debugger.session.optimizer.param_groups[0]["lr"] == 0.25


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (Perform("jump"), "unknown op word"),
        (Batch(("f", "nope")), "unknown op word"),
        (Undo(0), "n >= 1"),
        (Redo(-1), "n >= 1"),
        (SetHyper(0, "lr", -1.0), "lr must be >= 0"),
        (SetHyper(3, "lr", 0.1), "no param group 3"),
        (SetHyper(0, "lr", "0.1.2"), "cannot read"),
        (ContinueUntil("loss <"), "invalid condition"),
        (Goto(5), "no op 5 in the history"),
        (Choose(1), "not available"),
    ],
)
def test_refusals_are_outcomes_and_change_nothing(command: object, words: str) -> None:
    debugger = opened()
    debugger.execute(Perform("f"))
    outcome = debugger.execute(command)  # type: ignore[arg-type]
    assert isinstance(outcome, Refused), outcome
    assert words in outcome.text
    assert [e.op for e in debugger.session.events] == ["forward"]
    assert debugger.session.optimizer.param_groups[0]["lr"] == 0.1


@pytest.mark.parametrize(
    ("command", "text"),
    [
        (Undo(1.5), "undo failed: TypeError: "),
        (Goto("x"), "go to op x failed: TypeError: "),
    ],
)
def test_an_unexpected_error_is_a_failed_outcome(command: object, text: str) -> None:
    """A command the engine raises on (here a field of the wrong type, as an untyped caller
    may send) is a Failed outcome naming the command and the error, not an exception; the
    state is unchanged and the debugger goes on."""
    debugger = opened()
    before = values(view_of(debugger.execute(Batch(("i", "i")))))
    outcome = debugger.execute(command)
    assert isinstance(outcome, Failed), outcome
    assert outcome.text.startswith(text) and outcome.view is None
    assert values(view_of(debugger.execute(Select()))) == before
    undone = debugger.execute(Undo(4))
    assert isinstance(undone, Performed) and undone.events[0].ok


# ------------------------------------------------------------------ continue


def test_continue_until_stops_at_the_condition_with_live_progress() -> None:
    debugger, seen = opened(), []
    outcome = debugger.execute(
        ContinueUntil("step >= 3", progress_every=0.0), on_progress=seen.append
    )
    assert isinstance(outcome, Continued) and outcome.result.reason == "condition"
    assert view_of(outcome).snapshot.step_count == 3
    assert seen and all(isinstance(p, Progress) and p.record is None for p in seen)
    assert [p.counters.op_count for p in seen if p.counters] == list(range(1, len(seen) + 1))
    assert debugger.session.capture_graph  # put back after the run
    loop = PlainLoop.load("quadratic_bowl")
    for word in "fbsz" * 2 + "fbs":
        loop.op(word)
    assert values(view_of(outcome))["t"] == plain_values(loop, "t")


def test_continue_stops_on_a_warning_and_on_the_stop_flag() -> None:
    debugger = opened()
    debugger.execute(Batch(("f", "b")))
    warned = debugger.execute(Batch(("f", "b", "s")))  # forgot zero_grad
    assert isinstance(warned, Performed) and any(e.warnings for e in warned.events)
    stop = threading.Event()
    stop.set()
    paused = debugger.execute(ContinueUntil(stop_on_warning=False), stop=stop)
    assert isinstance(paused, Continued) and paused.result.reason == "stopped"
    assert paused.result.events == ()


def test_a_headless_continue_reports_each_op_with_its_record() -> None:
    debugger, seen = opened(panels=False, records=True), []
    outcome = debugger.execute(
        ContinueUntil("", False, max_iterations=2, progress_every=0.0), on_progress=seen.append
    )
    assert isinstance(outcome, Continued) and outcome.result.reason == "max_iterations"
    assert [p.record.event.op for p in seen if isinstance(p, Progress) and p.record] == [
        "forward",
        "backward",
        "step",
        "zero_grad",
    ] * 2
    assert all(isinstance(p, Progress) and p.counters is None for p in seen)


# ------------------------------------------------------------------ the rest


def test_slow_backward_records_the_steps_and_equals_a_plain_backward() -> None:
    debugger, loop = opened(), PlainLoop.load("quadratic_bowl")
    debugger.execute(Perform("f"))
    outcome = debugger.execute(SlowBackward())
    assert isinstance(outcome, SlowMotion) and outcome.event.op == "backward"
    assert outcome.steps and outcome.steps[0].node
    loop.op("f")
    loop.op("b")
    assert grads(view_of(outcome))["t"] == loop.ns["t"].grad.tolist()


def test_diagnose_select_and_export(tmp_path: Path) -> None:
    debugger = opened()
    nothing = debugger.execute(ExportGraph(tmp_path / "g.dot"))
    assert isinstance(nothing, Noted) and nothing.severity == "warning"
    debugger.execute(Batch(("f", "b", "s", "f", "b")))
    found = debugger.execute(Diagnose())
    assert isinstance(found, Diagnosed) and found.ops == 5
    assert "grad-accumulated" in [d.code for d in found.diagnoses]
    shown = debugger.execute(Select("t"))
    assert isinstance(shown, Viewed) and view_of(shown).detail is not None
    written = debugger.execute(ExportGraph(tmp_path / "g.dot"))
    assert isinstance(written, Noted) and written.severity == "information", written
    assert "digraph" in (tmp_path / "g.dot").read_text()


def test_landscapes_are_plain_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    debugger = opened()
    debugger.execute(Perform("i"))
    drawn = debugger.execute(DrawLandscape(40, 12))
    assert isinstance(drawn, Landscape) and drawn.contour is not None
    sliced = debugger.execute(DrawSlice())
    assert isinstance(sliced, Landscape | Noted)
    written = debugger.execute(ExportLandscape())
    assert isinstance(written, Noted) and written.severity == "information", written
    assert list(tmp_path.glob("quadratic_bowl-landscape-op4*.png"))


def test_a_headless_select_gives_the_snapshot_alone() -> None:
    debugger = opened(panels=False)
    debugger.execute(Perform("f"))
    shown = debugger.execute(Select())
    assert isinstance(shown, Viewed) and shown.view is not None
    assert shown.view.snapshot.op_count == 1 and shown.view.graph is None


# ------------------------------------------------------------------ a comparison


def test_a_comparison_runs_in_lockstep_and_equals_each_variant_alone() -> None:
    variants = make_variants(["quadratic_bowl"], [("lr", [0.1, 0.25])])
    debugger = CompareDebugger.start(variants, ["i"], repeat=1)
    outcome = debugger.execute(Perform("i"))
    assert isinstance(outcome, Performed) and isinstance(outcome.view, CompareView)
    assert [p.op_count for p in outcome.view.pulses] == [8, 8]
    chosen = debugger.execute(Choose(1))
    assert isinstance(chosen, Viewed) and isinstance(chosen.view, CompareView)
    assert chosen.view.chosen == 1 and chosen.view.snapshot.groups[0]["lr"] == 0.25
    assert [s.capture_graph for s in debugger.comparison.sessions] == [False, True]
    alone = Debugger.open("quadratic_bowl", {"lr": 0.25})
    alone.execute(Batch(("i", "i")))
    assert values(chosen.view) == values(view_of(alone.execute(Select())))
    refused = debugger.execute(Goto(0))
    assert isinstance(refused, Refused) and "lockstep" not in refused.text
    assert "go back with u" in refused.text
    seen: list[object] = []
    ran = debugger.execute(ContinueUntil("step >= 4", progress_every=0.0), on_progress=seen.append)
    assert isinstance(ran, Continued) and ran.result.reason == "condition"
    assert seen and all(isinstance(p, LockstepProgress) for p in seen)


def test_a_comparison_exports_its_loss_curves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    variants = make_variants(["quadratic_bowl"], [("lr", [0.1, 0.25])])
    debugger = CompareDebugger.start(variants, ["i"], repeat=2)
    written = debugger.execute(ExportLosses())
    assert isinstance(written, Noted) and written.severity == "information", written
    assert list(tmp_path.glob("quadratic_bowl-losses-op8*.png"))


def test_diagnose_before_any_op_shows_what_the_load_found(tmp_path: Path) -> None:
    path = tmp_path / "frozen.py"
    path.write_text(
        "import torch\n"
        "t = torch.tensor([1.0, 2.0], requires_grad=True)\n"
        "w = torch.tensor([5.0])\n"
        "optimizer = torch.optim.SGD([t, w], lr=0.1)\n\n"
        "def forward():\n"
        "    return (t ** 2).sum() + w.sum()\n"
    )
    found = Debugger.open(path).execute(Diagnose())
    assert isinstance(found, Diagnosed) and found.ops == 0
    assert [d.code for d in found.diagnoses] == ["frozen-param"]


def test_an_iteration_records_each_op_with_its_own_values() -> None:
    """`--ops i --json`: each op's record holds the values right after that op (a plain
    loop's), not those after the whole iteration."""
    debugger = opened(panels=False, records=True)
    outcome = debugger.execute(Perform("i"))
    assert isinstance(outcome, Performed)
    loop = PlainLoop.load("quadratic_bowl")
    assert [r.event.op for r in outcome.records] == ["forward", "backward", "step", "zero_grad"]
    for record, word in zip(outcome.records, "fbsz", strict=True):
        loop.op(word)
        (name, value, grad) = record.params[0]
        assert value.flat() == plain_values(loop, name)
        t = loop.ns[name]
        assert (grad.flat() if grad is not None else None) == (
            t.grad.reshape(-1).tolist() if t.grad is not None else None
        )


def test_a_comparisons_iteration_records_each_op_of_each_variant() -> None:
    variants = make_variants(["quadratic_bowl"], [("lr", [0.1, 0.25])])
    debugger = CompareDebugger.start(variants, panels=False, records=True)
    outcome = debugger.execute(Perform("i"))
    assert isinstance(outcome, Performed)
    for variant in outcome.variants:
        steps = [r for r in variant.records if r.event.op == "step"]
        forward = variant.records[0]
        assert forward.params[0][1].flat() == [10.0, 10.0]  # before the step moved it
        assert steps[0].params[0][1].flat() != [10.0, 10.0]


DIVERGING = """
import torch
w = torch.tensor([1.0, 2.0], requires_grad=True)
b = torch.tensor(0.5, requires_grad=True)
optimizer = torch.optim.SGD([w, b], lr=1e20)


def forward():
    return ((w * 3.0 + b) ** 2).sum()
"""


def test_summaries_without_values_change_no_warning_and_count_what_moved(tmp_path: Path) -> None:
    """`--quiet` and `--json` print no summary line: their debugger reads no norm for one
    (the detectors check the moved values by their sums instead). Every warning, down to its
    numbers, is the one of a debugger whose summaries show values, as the loop diverges to
    Inf and NaN; the summaries count what each op did."""
    path = tmp_path / "diverging.py"
    path.write_text(DIVERGING)
    shown, counted = (
        Debugger.open(path, panels=False, summaries=summaries) for summaries in (True, False)
    )
    events = {True: [], False: []}
    for _ in range(4):
        for word in "fbsz":
            for summaries, debugger in ((True, shown), (False, counted)):
                outcome = debugger.execute(Perform(word))
                assert isinstance(outcome, Performed)
                events[summaries] += outcome.events
    warned = {k: [[(w.code, w.message) for w in e.warnings] for e in v] for k, v in events.items()}
    assert warned[True] == warned[False]
    assert "non-finite" in {code for found in warned[True] for code, _ in found}
    assert [e.summary for e in events[False][1:3]] == [
        "2 parameters received a gradient",
        "2 parameters moved",
    ]
    assert events[True][1].summary.startswith("w.grad = [")
    final = [repr(values(view_of(d.execute(Select())))) for d in (shown, counted)]
    assert final[0] == final[1] and "nan" in final[0]  # NaN == NaN as text
