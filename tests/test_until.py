"""Continue and breakpoints: run_until, its conditions, and `optdbg run --until`.

Where the run must stop is computed here with a plain PyTorch loop (tests/plain.py): the
first op after which the condition holds, counting ops as the Session does.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import torch

from optdbg.engine import OPS, Session
from optdbg.engine.breakpoints import (
    AnyOf,
    ConditionError,
    Epochs,
    Iterations,
    LossCrosses,
    WarningFires,
    evaluate,
    parse_condition,
    parse_expression,
)
from optdbg.tui.cli import main

sys.path.insert(0, str(Path(__file__).parent))

from plain import PlainLoop


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def plain_stop(name: str, holds: Any, limit: int = 1000) -> int:
    """The index of the first op of f b s z ... after which `holds(loop)` is true."""
    loop = PlainLoop.load(name)
    index = 0
    for _ in range(limit):
        for op in OPS:
            getattr(loop, op)()
            if holds(loop):
                return index
            index += 1
    raise AssertionError("the condition never held")


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["run", *args])
    out, err = capsys.readouterr()
    return code, out, err


# ----------------------------------------------------------------- --until on the CLI


def test_until_stops_right_after_the_first_op_where_the_condition_holds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    want = plain_stop("quadratic_bowl", lambda loop: loop.loss.item() < 8.01)
    code, out, _ = run_cli(capsys, "quadratic_bowl", "--until", "loss < 8.01")
    assert code == 0
    lines = out.splitlines()
    ops = [line for line in lines if line[:5].strip().isdigit()]
    assert len(ops) == want + 1 and ops[-1].split()[:2] == [str(want), "forward"]
    assert lines[-1] == f"stopped: condition met at op {want} (forward): loss < 8.01"


def test_until_with_json_keeps_stdout_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    want = plain_stop("quadratic_bowl", lambda loop: loop.loss.item() < 8.01)
    code, out, err = run_cli(capsys, "quadratic_bowl", "--until", "loss < 8.01", "--json")
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["index"] for r in records] == list(range(want + 1))
    assert records[-1]["op"] == "forward" and records[-1]["loss"] < 8.01
    assert all(r["loss"] >= 8.01 for r in records[:-1] if r["loss"] is not None)
    assert err.strip() == f"stopped: condition met at op {want} (forward): loss < 8.01"


def test_until_quiet_prints_the_summary_and_why(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "quadratic_bowl", "--until", "step >= 3", "--quiet")
    assert code == 0
    summary, why = out.splitlines()
    assert summary.startswith("quadratic_bowl: 11 ops, 3 steps")
    assert why == "stopped: condition met at op 10 (step): step >= 3"


def test_max_iterations_stops_at_an_iteration_boundary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys, "quadratic_bowl", "--until", "loss < 0", "--max-iterations", "3", "--quiet"
    )
    assert code == 0
    summary, why = out.splitlines()
    assert summary.startswith("quadratic_bowl: 12 ops, 3 steps")
    assert why == "stopped: max iterations reached (3) without loss < 0"
    code, out, _ = run_cli(capsys, "quadratic_bowl", "--max-iterations", "2")
    assert out.splitlines()[-1] == "stopped: max iterations reached (2)"
    assert len(out.splitlines()) == 9


def test_until_after_ops_and_on_the_gradient_norm(capsys: pytest.CaptureFixture[str]) -> None:
    def small_grad(loop: PlainLoop) -> bool:
        grads = [p.grad for g in loop.optimizer.param_groups for p in g["params"]]
        if any(g is None for g in grads):
            return False
        return math.sqrt(sum(float(g.double().norm()) ** 2 for g in grads)) < 1

    want = plain_stop("quadratic_bowl", small_grad)
    code, out, _ = run_cli(capsys, "quadratic_bowl", "--until", "grad_norm < 1")
    assert code == 0
    assert out.splitlines()[-1] == f"stopped: condition met at op {want} (backward): grad_norm < 1"
    _, out, _ = run_cli(capsys, "quadratic_bowl", "--ops", "f b s", "--until", "op == 'step'")
    lines = out.splitlines()
    assert lines[-1] == "stopped: condition met at op 6 (step): op == 'step'"
    assert [line.split()[1] for line in lines[:-1]] == [
        "forward", "backward", "step", "zero_grad", "forward", "backward", "step"
    ]  # fmt: skip


def test_until_stops_on_an_op_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "breaks.py"
    path.write_text(
        "import torch\n"
        "t = torch.tensor([1.0], requires_grad=True)\n"
        "optimizer = torch.optim.SGD([t], lr=0.1)\n"
        "calls = 0\n"
        "def forward():\n"
        "    global calls\n"
        "    calls += 1\n"
        "    if calls == 3:\n"
        "        raise ValueError('third time')\n"
        "    return (t ** 2).sum()\n",
        encoding="utf-8",
    )
    code, out, _ = run_cli(capsys, str(path), "--until", "loss < 0")
    assert code == 0
    assert out.splitlines()[-1].startswith("stopped: op 8 (forward) failed: ValueError")


@pytest.mark.parametrize(
    "condition",
    [
        "__import__('os').system('echo hacked')",
        "loss.__class__",
        "open('/etc/passwd')",
        "(lambda: 1)()",
        "loss <",
        "",
        "foo > 1",
        "[x for x in warnings]",
        "loss[0] > 1",
        "1 if loss else 0",
        "(x := 3) > 1",
        "loss",
        "warnings > 3",
        "'a' * 3 == 'aaa'",
        "isnan",
        "abs(loss, 2) > 1",
        "min(loss=1) > 0",
        "b'x' in warnings",
        "f'{loss}' == ''",
        "(" * 5000 + "loss" + ")" * 5000 + " > 1",
        "loss > 1 " + "and loss > 1 " * 200,
    ],
)
def test_invalid_conditions_exit_2_with_a_clear_message(
    capsys: pytest.CaptureFixture[str], condition: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "quadratic_bowl", "--until", condition])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid --until condition" in err
    assert "Traceback" not in err


def test_cli_subprocess_until() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from optdbg.tui.cli import main; raise SystemExit(main())",
         "run", "quadratic_bowl", "--until", "'hacked' in op or loss < 8.01", "--quiet"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("stopped: condition met at op 92 (forward)")
    bad = subprocess.run(
        [sys.executable, "-c", "from optdbg.tui.cli import main; raise SystemExit(main())",
         "run", "quadratic_bowl", "--until", "__import__('os').system('echo hacked')"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2 and "hacked" not in bad.stdout
    assert "invalid --until condition" in bad.stderr


# ----------------------------------------------------------------- the condition language


@pytest.mark.parametrize(
    ("text", "env", "want"),
    [
        ("loss < 8.01", {"loss": 8.0}, True),
        ("loss < 8.01", {"loss": 9.0}, False),
        ("'grad-accumulated' in warnings", {"warnings": ("grad-accumulated",)}, True),
        ("'grad-accumulated' not in warnings", {"warnings": ()}, True),
        ("step >= 10 and grad_norm > 1e3", {"step": 10, "grad_norm": 2e3}, True),
        ("not isfinite(loss)", {"loss": math.nan}, True),
        ("loss != loss", {"loss": math.nan}, True),
        ("loss > 1e30 or isnan(loss)", {"loss": math.inf}, True),
        ("epoch == 2 or -loss > -1", {"epoch": 1, "loss": 0.5}, True),
        ("abs(loss - 8) < 1e-3", {"loss": 8.0005}, True),
        ("op in ('step', 'forward')", {"op": "step"}, True),
        ("10 ** 10 ** 10 > loss", {"loss": 1.0}, True),
        ("loss / 0 > 1", {"loss": 1.0}, False),
        ("0 < lr <= 0.1", {"lr": 0.1}, True),
        ("iteration % 5 == 0 and batch == 1", {"iteration": 10, "batch": 1}, True),
        ("max(loss, 2) == 2", {"loss": 1.0}, True),
        ("loss < inf", {"loss": 1.0}, True),
    ],
)
def test_conditions_evaluate(text: str, env: dict[str, Any], want: bool) -> None:
    tree, names = parse_expression(text)
    assert names <= set(env)
    assert evaluate(tree, env) is want


def test_unset_values_make_comparisons_false() -> None:
    from optdbg.engine.breakpoints import MISSING

    tree, _ = parse_expression("loss < 5")
    assert evaluate(tree, {"loss": MISSING}) is False
    tree, _ = parse_expression("not isfinite(loss)")
    assert evaluate(tree, {"loss": MISSING}) is not True


def test_evaluating_never_reaches_python() -> None:
    with pytest.raises(ConditionError, match="cannot be called"):
        parse_condition("__import__('os').system('true')")
    with pytest.raises(ConditionError, match="attributes"):
        parse_condition("loss.real > 0")
    with pytest.raises(ConditionError, match="unknown name 'torch'"):
        parse_condition("torch > 0")
    with pytest.raises(ConditionError, match="is a value, not a test"):
        parse_condition("loss + 1")


# ----------------------------------------------------------------- run_until, the API


def test_run_until_returns_why_and_where() -> None:
    session = Session.open("quadratic_bowl")
    result = session.run_until("loss < 8.01")
    want = plain_stop("quadratic_bowl", lambda loop: loop.loss.item() < 8.01)
    assert result.reason == "condition" and result.index == want
    assert result.events == tuple(session.events) and len(result.events) == want + 1
    assert result.iterations == want // 4
    again = session.run_until("loss < 8.01")  # still true: stops after the next op
    assert again.reason == "condition" and again.index == want + 1
    assert session.run_until(None, max_iterations=0).reason == "max_iterations"


def test_run_until_continues_mid_cycle_and_counts_whole_iterations() -> None:
    session = Session.open("quadratic_bowl")
    session.perform("f")
    session.perform("b")
    result = session.run_until(Iterations(2))
    assert [e.op for e in result.events] == ["step", "zero_grad", *OPS]
    assert result.reason == "condition" and result.iterations == 2


def test_stop_flag_from_another_thread_pauses_the_run() -> None:
    session = Session.open("mlp_sequential")
    stop = threading.Event()
    seen: list[int] = []
    started = threading.Event()

    def progress(event: Any) -> None:
        seen.append(event.index)
        started.set()

    def pause() -> None:
        started.wait(30)
        stop.set()

    thread = threading.Thread(target=pause)
    thread.start()
    result = session.run_until(None, stop=stop, on_progress=progress)
    thread.join()
    assert result.reason == "stopped" and result.message.startswith("paused after op")
    assert result.index == len(session.events) - 1 and seen
    [event] = session.perform("n")  # the session is usable where it paused
    assert event.ok


def test_stop_set_in_progress_stops_after_that_op() -> None:
    session = Session.open("quadratic_bowl")
    stop = threading.Event()

    def progress(event: Any) -> None:
        if event.index == 6:
            stop.set()

    result = session.run_until(None, stop=stop, on_progress=progress)
    assert result.reason == "stopped" and result.index == 6 and len(session.events) == 7


def test_progress_is_throttled() -> None:
    session = Session.open("quadratic_bowl")
    calls: list[int] = []
    session.run_until(None, max_iterations=50, on_progress=lambda e: calls.append(e.index),
                      progress_interval=3600)  # fmt: skip
    assert calls == [0]


def test_warning_breakpoint() -> None:
    session = Session.open("quadratic_bowl_lr10")
    result = session.run_until(WarningFires(), max_iterations=50)
    assert result.reason == "condition"
    assert result.events[-1].warnings and not any(e.warnings for e in result.events[:-1])
    code = result.events[-1].warnings[0].code
    fresh = Session.open("quadratic_bowl_lr10")
    same = fresh.run_until(f"{code!r} in warnings", max_iterations=50)
    assert same.index == result.index


def test_loss_crossing_iterations_and_epochs() -> None:
    session = Session.open("quadratic_bowl")
    session.perform("f")
    result = session.run_until(LossCrosses(100))
    assert result.reason == "condition"
    assert result.events[-1].loss is not None and result.events[-1].loss < 100
    assert all(e.loss is None or e.loss >= 100 for e in session.events[:-1])

    data = Session.open("linear_regression_minibatch")  # 100 batches per epoch
    result = data.run_until(Epochs(1))
    assert result.index == 400 and data.epoch == 2 and data.batch == 1
    assert result.events[-1].op == "forward"
    result = data.run_until(AnyOf(Iterations(3), LossCrosses(-1)))
    assert result.iterations == 3 and result.reason == "condition"


def test_run_until_then_undo_back_to_before_it() -> None:
    session = Session.open("classifier_adam")
    session.run_until("iteration >= 3 and op == 'zero_grad'")
    before = [p.detach().clone() for g in session.optimizer.param_groups for p in g["params"]]
    mark = len(session.events) - 1
    session.run_until(None, max_iterations=15)
    session.goto(mark)
    after = [p.detach().clone() for g in session.optimizer.param_groups for p in g["params"]]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
