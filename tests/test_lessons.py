"""Issue 14, the seeds' lessons: manual updates, evaluate, iteration patterns, vector backward,
undo without side effects. Every value is compared with a plain loop written here."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from plain import PlainLoop, assert_the_lectures_losses, run_plain

from optdbg.engine import ScenarioError, Session
from optdbg.engine.report import record
from optdbg.tui.cli import main


def bits(t: torch.Tensor | None) -> bytes | None:
    return None if t is None else t.detach().contiguous().numpy().tobytes()


def write(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(source, encoding="utf-8")
    return path


# ----------------------------------------------------------------- the manual update form


def tutorial_loop(iterations: int) -> list[tuple[float, ...]]:
    """The PyTorch tutorial's polynomial fit, as the lecture writes it (seeded as optdbg
    seeds a scenario): the parameters after each iteration."""
    ns = run_plain("polynomial_manual")  # only for x, y and the initial a, b, c, d
    x, y = ns["x"], ns["y"]
    a, b, c, d = (ns[k].detach().clone().requires_grad_() for k in "abcd")
    learning_rate = 1e-6
    after = []
    for _ in range(iterations):
        y_pred = a + b * x + c * x**2 + d * x**3
        loss = (y_pred - y).pow(2).sum()
        loss.backward()
        with torch.no_grad():
            a -= learning_rate * a.grad
            b -= learning_rate * b.grad
            c -= learning_rate * c.grad
            d -= learning_rate * d.grad
            a.grad = None
            b.grad = None
            c.grad = None
            d.grad = None
        after.append(tuple(t.item() for t in (a, b, c, d)))
    return after


def test_manual_loop_equals_the_tutorial_bit_for_bit_with_undo() -> None:
    want = tutorial_loop(300)
    session = Session.open("polynomial_manual")
    assert session.scenario.is_manual and session.optimizer_name == "step()"
    assert [t.name for t in session.tracks] == ["a", "b", "c", "d"]
    ns = session.scenario.namespace
    for k in range(300):
        assert all(e.ok and not e.warnings for e in session.perform("i"))
        if k % 50 == 49:  # back across more than an iteration, then forward again
            assert session.undo(6).ok
            for _ in range(6):
                assert session.redo().ok
            assert session.history.divergence is None
        got = tuple(ns[n].item() for n in "abcd")
        assert got == want[k], k  # Python floats of float32 values: equal bits
        assert all(ns[n].grad is None for n in "abcd")
    assert session.goto(3).ok  # after the first step
    assert tuple(ns[n].item() for n in "abcd") == want[0]


def test_manual_update_panel_writes_the_rule_with_numbers() -> None:
    from optdbg.engine.rules import describe

    session = Session.open("polynomial_manual")
    for word in ["f", "b", "s"]:
        session.perform(word)
    detail = session.update_detail("b")
    assert detail is not None and detail.rule is not None
    statement, coefficient, value = detail.rule
    assert statement == "b -= learning_rate * b.grad"
    assert (coefficient, value) == ("learning_rate", 1e-6)
    lines = describe(detail)
    assert any("def step():" in line for line in lines)
    assert any(line.startswith("b ← b − learning_rate·b.grad") for line in lines)
    assert any("1e-06·" in line for line in lines)
    assert lines[-1].startswith("Δb = ")
    snap = session.snapshot()
    assert snap.optimizer == "step()"
    assert record(session.events[-1], snap)["params"]["b"] == session.scenario.namespace["b"].item()


MANUAL = """
import torch
lr = 0.1
w = torch.tensor([1.0, 2.0], requires_grad=True)

def forward():
    return ((w - 3) ** 2).sum()

def step():
{body}
"""


@pytest.mark.parametrize(
    ("body", "kind", "words"),
    [
        ("    global w\n    w -= lr * w.grad\n", "RuntimeError", ["torch.no_grad()"]),
        (
            "    global w\n    with torch.no_grad():\n        w = w - lr * w.grad\n",
            "RebindError",
            ["w -= lr * w.grad", "never learns"],
        ),
        (
            "    with torch.no_grad():\n        w -= lr * w.grad\n",
            "UnboundLocalError",
            ["global w"],
        ),
    ],
    ids=["no-no_grad", "rebinding", "no-global"],
)
def test_manual_mistakes_are_explained_and_change_nothing(
    tmp_path: Path, body: str, kind: str, words: list[str]
) -> None:
    session = Session.open(write(tmp_path, "manual.py", MANUAL.format(body=body)))
    ns = session.scenario.namespace
    w = ns["w"]
    session.perform("f")
    session.perform("b")
    grad = w.grad.clone()
    [event] = session.perform("s")
    assert event.error is not None and event.error.type == kind, event.summary
    for word in words:
        assert word in event.error.explanation, event.error.explanation
    assert ns["w"] is w and w.tolist() == [1.0, 2.0] and torch.equal(w.grad, grad)
    assert session.step_count == 0


def test_manual_params_discovery_and_default_zero_grad(tmp_path: Path) -> None:
    source = """
import torch
from torch import nn
torch.manual_seed(3)
model = nn.Linear(2, 1)
scale = torch.ones(1, requires_grad=True)
frozen = torch.ones(1)
X, y = torch.randn(4, 2), torch.randn(4, 1)

def forward():
    return ((model(X) * scale - y) ** 2).mean()

def step():
    with torch.no_grad():
        for p in [*model.parameters(), scale]:
            p -= 0.1 * p.grad
"""
    session = Session.open(write(tmp_path, "discover.py", source))
    assert [t.name for t in session.tracks] == ["model.weight", "model.bias", "scale"]
    for word in ["f", "b", "s", "z"]:
        assert session.perform(word)[0].ok
    assert all(t.tensor.grad is None for t in session.tracks)  # default zero_grad
    detail = session.update_detail("scale")
    assert detail is not None and detail.rule is not None  # the loop form: p -= 0.1 * p.grad
    assert detail.rule[1:] == ("0.1", 0.1)


def test_no_update_form_is_one_clear_message(tmp_path: Path) -> None:
    path = write(tmp_path, "none.py", "import torch\nt = torch.zeros(1, requires_grad=True)\n")
    with pytest.raises(ScenarioError, match="no `optimizer` and no `step\\(\\)`"):
        Session.open(path)


# ----------------------------------------------------------------- evaluate


def lecture_test_loop(dataloader: Any, model: torch.nn.Module, loss_fn: Any) -> tuple[float, float]:
    """The lecture's test_loop (the PyTorch tutorial's), verbatim but returning its numbers."""
    model.eval()
    size = len(dataloader.dataset)
    num_batches = len(dataloader)
    test_loss, correct = 0, 0
    with torch.no_grad():
        for X, y in dataloader:
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()
    test_loss /= num_batches
    correct /= size
    return test_loss, correct


def test_evaluate_equals_the_lecture_test_loop_and_changes_nothing() -> None:
    session = Session.open("classifier_eval")
    for word in ["i", "i", "i", "f", "b"]:
        session.perform(word)
    ns = session.scenario.namespace
    params = [(bits(p), bits(p.grad)) for p in ns["model"].parameters()]
    rng = torch.get_rng_state()
    loader_rng = ns["data"].generator.get_state()
    [event] = session.perform("v")
    assert event.ok and event.op == "evaluate" and event.evaluation is not None
    assert ns["model"].training  # eval mode was restored
    assert [(bits(p), bits(p.grad)) for p in ns["model"].parameters()] == params
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.equal(ns["data"].generator.get_state(), loader_rng)
    assert record(event, session.snapshot())["eval"] == event.evaluation
    for word in ["s", "z", "i", "i"]:  # training goes on as if nothing was measured
        session.perform(word)
    # the plain loop (dropout draws from the global generator: run after the session)
    ref = PlainLoop.load("classifier_eval")
    ref.ops("i i i f b")
    plain_rng = torch.get_rng_state()
    loss, accuracy = lecture_test_loop(ref.ns["test_data"], ref.ns["model"], ref.ns["loss_fn"])
    ref.ns["model"].train()
    torch.set_rng_state(plain_rng)  # what evaluate promises: measuring draws nothing
    assert event.evaluation == {"loss": loss, "accuracy": accuracy}
    ref.ops("s z i i")
    for p, q in zip(ns["model"].parameters(), ref.ns["model"].parameters(), strict=True):
        assert bits(p) == bits(q)


def test_evaluate_is_in_the_history_undo_redo_exact() -> None:
    session = Session.open("classifier_eval")
    events = [e for w in ["i", "v", "i", "v", "i", "v"] for e in session.perform(w)]
    evals = [e.evaluation for e in events if e.op == "evaluate"]
    assert len(evals) == 3 and evals[0] != evals[1]
    assert session.undo(7).ok  # back to just after the first evaluation and f b s
    assert [ev.values for ev in session.evaluations] == evals[:1]
    for _ in range(7):
        assert session.redo().ok
    assert session.history.divergence is None
    assert [ev.values for ev in session.evaluations] == evals
    assert session.snapshot().eval_losses == tuple(
        (k, ev["loss"]) for k, ev in zip([1, 2, 3], evals, strict=True)
    )  # plotted after the 1st, 2nd and 3rd training loss


def test_evaluate_every_epoch_in_iterations() -> None:
    session = Session.open("classifier_eval")  # optdbg_config evaluate_every "epoch"
    per_epoch = len(session.scenario.data)  # type: ignore[arg-type]
    ops = [[e.op for e in session.perform("i")] for _ in range(per_epoch)]
    assert all(o == ["forward", "backward", "step", "zero_grad"] for o in ops[:-1])
    assert ops[-1][-1] == "evaluate"
    result = session.run_until(max_iterations=per_epoch)
    assert [e.op for e in result.events].count("evaluate") == 1


def test_evaluate_without_an_evaluation_is_refused(tmp_path: Path) -> None:
    session = Session.open("quadratic_bowl")
    [event] = session.perform("evaluate")
    assert event.error is not None and "test_data" in event.error.message


OVERFIT = """
import torch
t = torch.tensor([10.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)

def forward():
    return ((t - 3) ** 2).sum()

def evaluate():
    return float((t - 8).abs().sum())
"""


def test_overfitting_fires_once_when_evaluation_rises_as_training_falls(tmp_path: Path) -> None:
    session = Session.open(write(tmp_path, "overfit.py", OVERFIT))
    events = [e for _ in range(12) for e in session.perform("i") + session.perform("v")]
    fired = [e for e in events if "overfitting" in e.codes()]
    assert len(fired) == 1 and fired[0].op == "evaluate"
    evaluations = [e for e in events if e.evaluation is not None]
    evals = [e.evaluation["loss"] for e in evaluations if e.evaluation is not None]
    first = next(
        k for k in range(3, len(evals)) if evals[k - 3] < evals[k - 2] < evals[k - 1] < evals[k]
    )
    assert evaluations[first] is fired[0]
    assert first == 4  # |t - 8| falls once t passes 8.6 → 7.48, then rises as t nears 3


# ----------------------------------------------------------------- iteration patterns


def test_grad_accumulation_pattern_is_silent_under_strict_and_equals_the_plain_loop(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", "grad_accumulation", "--ops", "i", "--repeat", "6", "--strict"]) == 0
    assert "warning" not in capsys.readouterr().out
    session = Session.open("grad_accumulation")
    for _ in range(6):
        events = session.perform("i")
        assert [e.op for e in events] == ["forward", "backward"] * 4 + ["step", "zero_grad"]
    ns = run_plain("grad_accumulation")
    model, loss_fn, loader = ns["model"], ns["loss_fn"], ns["data"]
    optimizer, steps = ns["optimizer"], ns["accumulation_steps"]
    done = 0
    while done < 6:  # the plain accumulation loop, over epochs
        for i, (X, y) in enumerate(loader):
            loss = loss_fn(model(X), y) / steps
            loss.backward()
            if (i + 1) % steps == 0:
                optimizer.step()
                optimizer.zero_grad()
                done += 1
                if done == 6:
                    break
    mine = session.scenario.namespace["model"]
    for p, q in zip(mine.parameters(), model.parameters(), strict=True):
        assert bits(p) == bits(q)


def test_accidental_accumulation_still_warns_with_a_pattern() -> None:
    session = Session.open("grad_accumulation")
    events = [
        e for w in ["f", "b", "f", "b", "f", "b", "f", "b", "f", "b"] for e in session.perform(w)
    ]
    assert [e.index for e in events if "grad-accumulated" in e.codes()] == [9]
    session = Session.open("grad_accumulation")
    session.perform("i")
    assert session.next_op == "forward"
    events = [e for _ in range(12) for e in session.perform("n")]
    assert [e.op for e in events[:10]] == ["forward", "backward"] * 4 + ["step", "zero_grad"]


def test_a_bad_pattern_is_one_clear_message(tmp_path: Path) -> None:
    source = MANUAL.format(body="    pass\n") + 'optdbg_config = {"iteration": "f b jump"}\n'
    with pytest.raises(ScenarioError, match="iteration"):
        Session.open(write(tmp_path, "pattern.py", source))


# ----------------------------------------------------------------- vector backward

VECTOR = """
import torch
x = torch.linspace(-1.0, 2.0, 5, requires_grad=True)
optimizer = torch.optim.SGD([x], lr=0.1)
backward_gradient = {gradient}

def forward():
    return 3 * x ** 2
"""


@pytest.mark.parametrize("gradient", ["torch.ones(5)", "lambda loss: torch.ones_like(loss)"])
def test_vector_backward_equals_backward_with_ones(tmp_path: Path, gradient: str) -> None:
    session = Session.open(write(tmp_path, "vector.py", VECTOR.format(gradient=gradient)))
    events = [e for w in ["f", "b", "s", "z", "f", "b"] for e in session.perform(w)]
    assert all(e.ok and not e.warnings for e in events), [e.summary for e in events]
    x = torch.linspace(-1.0, 2.0, 5, requires_grad=True)
    optimizer = torch.optim.SGD([x], lr=0.1)
    for last in (False, True):
        y = 3 * x**2
        y.backward(torch.ones(5))
        if not last:
            optimizer.step()
            optimizer.zero_grad()
    mine = session.scenario.namespace["x"]
    assert bits(mine) == bits(x) and bits(mine.grad) == bits(x.grad)


# ----------------------------------------------------------------- undo without side effects

NOISY = """
import sys
import torch
t = torch.tensor([10.0, 10.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)
val_losses = []
argv_at_load = list(sys.argv)
argv_in_forward = []

def forward():
    loss = ((t - 3) ** 2).sum()
    print("forward", loss.item())
    val_losses.append(loss.item())
    argv_in_forward.append(list(sys.argv))
    return loss
"""


def test_undo_repeats_no_print_and_restores_the_scenarios_lists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "noisy.py", NOISY)
    session = Session.open(path)
    for word in ["f", "b", "s", "z", "f", "b", "s", "z"]:
        session.perform(word)
    for _ in range(6):
        assert session.undo().ok
    session.perform("f")
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("forward")]
    assert len(printed) == 3
    ns = session.scenario.namespace
    assert ns["val_losses"] == [
        98.0,
        98.0,
    ]  # the first forward (replayed quietly), then the new one
    assert ns["argv_at_load"] == [str(path)]
    assert ns["argv_in_forward"] == [[str(path)]] * 2


def test_json_run_of_linear_regression_gives_the_lectures_losses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["run", "linear_regression", "--ops", "z f b s", "--repeat", "30", "--json"]
    assert main(argv) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    losses = [r["loss"] for r in records if r["op"] == "forward"]
    assert len(losses) == 30
    # bit for bit the plain loop making the same calls, on this machine
    plain = PlainLoop.load("linear_regression")
    expected = []
    for _ in range(30):
        plain.ops("z f b s")
        expected.append(plain.loss.item())
    assert losses == expected
    assert_the_lectures_losses(losses)


# ----------------------------------------------------------------- the TUI


async def test_tui_v_shows_the_evaluation_in_the_loss_panel_and_the_log(tmp_path: Path) -> None:
    from pilot_helpers import press, settle

    from optdbg.tui.app import OptDbgApp
    from optdbg.tui.widgets import LogPanel, LossPanel

    path = write(tmp_path, "printing.py", OVERFIT + "\nprint('hello from the scenario')\n")
    source = path.read_text().replace(
        "def forward():\n", "def forward():\n    print('forward says hi')\n"
    )
    path.write_text(source, encoding="utf-8")
    app = OptDbgApp(Session.open(path))
    async with app.run_test(size=(160, 48)) as pilot:
        await press(pilot, "i", "v")
        await settle(pilot)
        loss = app.query_one(LossPanel)
        assert app.session is not None
        assert loss.evals == ((1, app.session.evaluations[-1].values["loss"]),)
        log = "\n".join(line.text for line in app.query_one(LogPanel).lines)
        assert "evaluate" in log and "eval loss =" in log
        assert "forward says hi" in log


async def test_tui_l_and_h_on_a_manual_step_say_where_its_learning_rate_is() -> None:
    from pilot_helpers import press

    from optdbg.tui.app import OptDbgApp

    app = OptDbgApp(Session.open("polynomial_manual"))
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        for key in ("l", "H"):
            await press(pilot, key)
            assert app.screen is app.screen_stack[0]  # no empty dialog
            (note,) = app._notifications
            assert "updates by hand" in note.message and "--set" in note.message
            app.clear_notifications()
