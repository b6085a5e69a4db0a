"""A debugger is opened on broken code: optdbg must never be the thing that breaks.

The corpus in tests/broken/ holds one broken scenario per case, each saying in its
docstring what is broken and what optdbg must do. The tables below are the expected
outcomes: a load error (the CLI exits 2 with one message naming the file and the line)
or op errors recorded in the session, which carries on (the CLI exits 0). The engine
checks every file; the CLI code runs in-process on every file and as the installed
script on a representative subset (no Python traceback, ever); the TUI is driven with
Pilot on a few (the error is shown and the app stays usable).
"""

from __future__ import annotations

import ast
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from pilot_helpers import log_text, press, settle, status
from textual.pilot import Pilot

from optdbg.engine import ScenarioError, Session
from optdbg.engine.explain import UNCHANGED
from optdbg.engine.scenario import load
from optdbg.tui.app import OptDbgApp
from optdbg.tui.cli import main as cli_main
from optdbg.tui.runner import EngineThread, run_job
from optdbg.tui.screens import HelpScreen

BROKEN = Path(__file__).parent / "broken"
OPTDBG = Path(sys.executable).parent / "optdbg"
TRACEBACK = "Traceback (most recent call last)"
WIDE = (160, 48)


# ----------------------------------------------------------------- expected outcomes


@dataclass(frozen=True)
class LoadFails:
    """Loading raises ScenarioError at `line` (None: the whole file, for what is missing),
    whose first line contains `text`."""

    line: int | None
    text: str


@dataclass(frozen=True)
class OpsRun:
    """Loading works; `words` give these (op, error type or None) events, the first error's
    message contains `text`, and its explanation names `line` of the file (when given)."""

    words: str
    events: tuple[tuple[str, str | None], ...]
    text: str = ""
    line: int | None = None
    loss: str = ""
    """"nan" / "inf": the loss after the ops, when it is not finite."""
    explains: str = ""
    """Text the first error's explanation contains."""


FBSZ_FORWARD_FAILS = (("forward", "{}"), ("backward", "UsageError"), ("step", None))
OK4 = (("forward", None), ("backward", None), ("step", None), ("zero_grad", None))


def forward_fails(error: str) -> tuple[tuple[str, str | None], ...]:
    """f b s z when every forward raises `error`: backward has no loss, step moves nothing."""
    return (("forward", error), ("backward", "UsageError"), ("step", None), ("zero_grad", None))


def backward_fails(error: str) -> tuple[tuple[str, str | None], ...]:
    return (("forward", None), ("backward", error), ("step", None), ("zero_grad", None))


LOAD_ERRORS: dict[str, LoadFails] = {
    "syntax_unclosed_paren.py": LoadFails(6, "syntax error: '(' was never closed"),
    "syntax_bad_indent.py": LoadFails(13, "syntax error: unexpected indent"),
    "raises_at_load.py": LoadFails(9, "ZeroDivisionError while loading the scenario"),
    "missing_optimizer.py": LoadFails(None, "no `optimizer` and no `step()` are defined"),
    "optimizer_wrong_type.py": LoadFails(9, "`optimizer` is a Linear, not a torch.optim"),
    "tensor_not_list.py": LoadFails(10, "params argument given to the optimizer"),
    "empty_param_list.py": LoadFails(10, "optimizer got an empty parameter list"),
    "int_requires_grad.py": LoadFails(10, "Only Tensors of floating point"),
    "unavailable_device.py": LoadFails(10, "while loading the scenario"),
    "meta_device_param.py": LoadFails(10, "parameter `w` is on the meta device"),
    "sys_exit_at_load.py": LoadFails(11, "the scenario called sys.exit(3) while loading"),
    "input_at_load.py": LoadFails(9, "input() cannot be used in a scenario"),
    "forward_batch_without_data.py": LoadFails(13, "there is no `data` to feed it"),
    "scheduler_wrong_type.py": LoadFails(11, "`scheduler` is a float without a step()"),
    "not_utf8.py": LoadFails(1, "the file is not UTF-8 text"),
    "optimizer_needs_closure.py": LoadFails(10, "LBFGS.step() needs a closure"),
    "scheduler_needs_metric.py": LoadFails(12, "ReduceLROnPlateau, whose step() needs an"),
    "exception_str_raises_at_load.py": LoadFails(
        15, "Unprintable while loading the scenario: (its message cannot be read"
    ),
    "module_without_super_init.py": LoadFails(13, "Net (an nn.Module) that was never initial"),
    "module_raises_when_read.py": LoadFails(23, "RuntimeError while loading the scenario: named"),
    "deep_expression_at_load.py": LoadFails(8, "nested too deeply for Python to compile"),
    "os_exit_at_load.py": LoadFails(11, "os._exit(4) cannot be used in a scenario"),
    "nul_byte.py": LoadFails(8, "the file holds a NUL byte"),
    "long_source_line.py": LoadFails(8, "NameError while loading the scenario"),
}

OP_ERRORS: dict[str, OpsRun] = {
    "raises_in_forward.py": OpsRun(
        "f b s z", forward_fails("ValueError"), "the scenario's own bug", 14
    ),
    "non_scalar_loss.py": OpsRun(
        "f b s z", backward_fails("RuntimeError"), "only for scalar outputs"
    ),
    "float_loss.py": OpsRun("f b s z", forward_fails("TypeError"), "returned a float", 13),
    "none_loss.py": OpsRun("f b s z", forward_fails("TypeError"), "returned a NoneType", 13),
    "nan_from_start.py": OpsRun("f b s z f", (*OK4, ("forward", None)), loss="nan"),
    "inf_from_start.py": OpsRun("f b", OK4[:2], loss="inf"),
    "mixed_dtypes.py": OpsRun("f b s z", forward_fails("RuntimeError"), "same dtype", 16),
    "sys_exit_in_forward.py": OpsRun("f b s z", forward_fails("SystemExit"), "1", 16),
    "input_in_forward.py": OpsRun(
        "f b s z", forward_fails("RuntimeError"), "input() cannot be used", 15
    ),
    "data_raises_midway.py": OpsRun(
        "f f f f",
        (("forward", None), ("forward", None), ("forward", "OSError"), ("forward", None)),
        "shard 3 is corrupt",
        20,
    ),
    "empty_data.py": OpsRun(
        "f b s z", forward_fails("StopIteration"), "yielded no batches", explains="is empty"
    ),
    "data_one_shot_generator.py": OpsRun(
        "f f f f",
        (("forward", None), ("forward", None), ("forward", None), ("forward", "StopIteration")),
        "yielded no batches",
        explains="one-shot iterator",
    ),
    "loss_detached.py": OpsRun("f b s z", backward_fails("RuntimeError"), "grad_fn"),
    "loss_under_no_grad.py": OpsRun("f b s z", backward_fails("RuntimeError"), "grad_fn"),
    "recursion_in_forward.py": OpsRun(
        "f b s z", forward_fails("RecursionError"), "maximum recursion depth", 15
    ),
    "supervised_bad_batch.py": OpsRun(
        "f b s z", forward_fails("TypeError"), "must be a pair (X, y)"
    ),
    "huge_tensor.py": OpsRun("f b s z", OK4),
    "prints_to_stdout.py": OpsRun("f b s z", OK4),
    "scheduler_raises_in_step.py": OpsRun(
        "i i f b s n",
        (*OK4, *OK4, ("forward", None), ("backward", None), *[("step", "ValueError")] * 2),
        "Tried to step 3 times",
        explains="the parameters have moved",
    ),
    "base_exception_in_forward.py": OpsRun(
        "f b s z", forward_fails("Abort"), "stop everything", 19, explains=UNCHANGED
    ),
    "keyboard_interrupt_in_forward.py": OpsRun(
        "f b s z f",
        (*forward_fails("KeyboardInterrupt"), ("forward", "KeyboardInterrupt")),
        line=14,
    ),
    "os_exit_in_forward.py": OpsRun(
        "f b s z", forward_fails("RefusedCall"), "os._exit(5) cannot be used in a scenario", 16
    ),
    "stdin_in_forward.py": OpsRun(
        "f b s z", forward_fails("RefusedCall"), "reading sys.stdin cannot be used", 16
    ),
    "complex_loss.py": OpsRun(
        "f b s z u", (*forward_fails("TypeError"), ("undo", None)), "complex loss", 14
    ),
    "item_fails_in_forward.py": OpsRun(
        "f b s z f b",
        (*OK4, ("forward", "RuntimeError"), ("backward", "RuntimeError")),
        "item() cannot be called on meta tensors",
        explains="cannot be read",
    ),
    "forward_fails_keeps_batch.py": OpsRun(
        "f b s z f f", (*OK4, ("forward", "ValueError"), ("forward", None)), "flaky once", 19
    ),
    "dict_batches.py": OpsRun(
        "f b s z",
        forward_fails("TypeError"),
        "must be a pair (X, y) for loss_fn(model(X), y); got a dict with keys 'x', 'y'",
    ),
    "brackets_in_message.py": OpsRun(
        "f b s z",
        forward_fails("TypeError"),
        "expected Tensor for [weights], got [Tensor] at [/data/shard-3] [/]",
        14,
    ),
    "inplace_in_forward.py": OpsRun(
        "f b s z", backward_fails("RuntimeError"), "modified by an inplace", explains="no step ran"
    ),
    "huge_message_in_forward.py": OpsRun(
        "f b s z", forward_fails("ValueError"), "… (198000 more characters)", 14
    ),
    "control_chars_in_text.py": OpsRun(
        "f b s z", forward_fails("ValueError"), "bad \\x1b[2J\\x1b]0;title\\x07 value \\x0d", 14
    ),
    "scheduler_holds_open_file.py": OpsRun(
        "f b s z u", (*OK4, ("undo", "UsageError")), "the scenario's state cannot be copied"
    ),
    "add_param_group_in_forward.py": OpsRun(
        "f b s z u", (*OK4, ("undo", "UsageError")), "changed the optimizer's param groups"
    ),
    "step_moves_without_grad.py": OpsRun("s f b s z", (("step", None), *OK4)),
    "loss_is_the_parameter.py": OpsRun("f b s z", OK4),
    "data_len_huge.py": OpsRun("f b s z", OK4),
    "data_len_raises.py": OpsRun("f b s z", OK4),
    "signal_alarm_at_load.py": OpsRun("f b s z", OK4),
    "torch_globals_at_load.py": OpsRun("f b s z", OK4),
    "thread_at_load.py": OpsRun("f b s z", OK4),
    "stdout_rebound_to_terminal.py": OpsRun("f b s z", OK4),
    "nan_forever.py": OpsRun("f b s z f", (*OK4, ("forward", None)), loss="nan"),
    "bom_crlf.py": OpsRun("f b s z", OK4),
}

CANCELLED = {
    # never return by themselves: cancelled from the engine thread, as the TUI does; the
    # cancel lands on whichever line of the loop runs at that moment
    "hanging_forward.py": (16, 17),
    "unbounded_alloc.py": (19, 20, 21),
}


def names_a_line(text: str, name: str) -> bool:
    return any(f"{name}:{line}" in text for line in CANCELLED[Path(name).name])


HUGE = {"huge_tensor.py", "thread_at_load.py"}
"""Run through the installed CLI only: 400 MB per copy; a thread that never ends (it would
keep the test process from exiting)."""

CORPUS = sorted(p.name for p in BROKEN.glob("*.py"))


def needs_no_cuda(name: str) -> list[pytest.MarkDecorator]:
    if name == "unavailable_device.py" and torch.cuda.is_available():
        return [pytest.mark.skip(reason="CUDA is available here: the file loads")]
    return []


def cases(names: list[str]) -> list[object]:
    return [pytest.param(n, id=n.removesuffix(".py"), marks=needs_no_cuda(n)) for n in names]


def test_the_corpus_is_complete_and_documented() -> None:
    expected = set(LOAD_ERRORS) | set(OP_ERRORS) | set(CANCELLED)
    assert set(CORPUS) == expected
    assert len(CORPUS) >= 25
    for name in CORPUS:
        head = (BROKEN / name).read_bytes()[:400].removeprefix(b"\xef\xbb\xbf")
        assert head.startswith(b'"""'), f"{name}: no module docstring"
        assert b"optdbg must" in head or b"optdbg " in head, f"{name}: says nothing expected"


def test_the_corpus_is_broken_as_described() -> None:
    """Each file breaks the way its table entry says (guards against a fixed corpus)."""
    raw = (BROKEN / "not_utf8.py").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    for name in ("syntax_unclosed_paren.py", "syntax_bad_indent.py"):
        with pytest.raises(SyntaxError):
            ast.parse((BROKEN / name).read_text(encoding="utf-8"))


# ----------------------------------------------------------------- the engine


@pytest.mark.parametrize("name", cases(list(LOAD_ERRORS)))
def test_load_error_names_the_file_and_line(name: str) -> None:
    want = LOAD_ERRORS[name]
    path = BROKEN / name
    with pytest.raises(ScenarioError) as info:
        load(path)
    error = info.value
    text = str(error)
    assert error.file == str(path)
    assert error.line == want.line, text
    first = text.splitlines()[0]
    assert first.startswith(f"{path}:{want.line}: " if want.line else f"{path}: "), first
    assert want.text in first, first
    assert "\n  expected: " in text and "\n  fix: " in text
    assert TRACEBACK not in text and "site-packages" not in text


def _observe(session: Session) -> None:
    """Everything the UI and the CLI read after an op: none of it may raise."""
    snap = session.snapshot()
    for p in snap.params:
        session.update_detail(p.name)
        session.values_text(p.name)
    session.graph()
    session.findings()


def _op_cases() -> list[object]:
    return cases([n for n in OP_ERRORS if n not in HUGE])


@pytest.mark.parametrize("name", _op_cases())
def test_op_errors_are_recorded_and_the_session_carries_on(name: str) -> None:
    want = OP_ERRORS[name]
    path = BROKEN / name
    session = Session.open(path)
    _observe(session)
    events = []
    for word in want.words.split():
        events += session.perform(word)
        _observe(session)
    assert [(e.op, e.error.type if e.error else None) for e in events] == list(want.events)
    errors = [e.error for e in events if e.error is not None]
    if want.text:
        assert errors, "expected an op error"
        assert want.text in errors[0].message, errors[0]
    if want.line is not None:
        assert f"{path}:{want.line}" in errors[0].explanation, errors[0]
    if want.explains:
        assert want.explains in errors[0].explanation, errors[0]
    for error in errors:
        assert error.explanation and TRACEBACK not in error.message + error.explanation
    if want.loss:
        assert str(session.loss_value) == want.loss
    # still usable: an op that needs nothing from the scenario works, the log is intact
    logged = len(session.events)
    assert session.perform("z")[0].ok
    assert len(session.events) == logged + 1
    if "u" not in want.words.split():
        assert len(session.events) == len(events) + 1


def loop_state(session: Session) -> dict[str, object]:
    """Everything a failed op must leave as it was: counters, loss, data position, random
    state, parameters, grads and optimizer state (copies)."""

    def copy(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.detach().clone()

    params = [p for _, p in session.scenario.params]
    return {
        "counters": (session.step_count, session.forward_count, session.next_op),
        "loss": (id(session.loss), session.loss_value, tuple(session.loss_history)),
        "data": (session.epoch, session.batch),
        "rng": (torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy()),
        "params": [copy(p) for p in params],
        "grads": [copy(p.grad) for p in params],
        "optimizer": [
            {k: copy(v) if isinstance(v, torch.Tensor) else v for k, v in st.items()}
            for st in (session.optimizer.state.get(p, {}) for p in params)
        ],
        "groups": [
            {k: v for k, v in g.items() if k != "params"} for g in session.optimizer.param_groups
        ],
    }


def same(a: object, b: object) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.is_floating_point() or a.is_complex():
            return bool(torch.allclose(a, b, rtol=0, atol=0, equal_nan=True))
        return bool(torch.equal(a, b))
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b) or (a != a and b != b)  # NaN equals NaN here


MOVED = ("have moved", "changed this before failing")
"""What an op error says when it did change the state (then it names what)."""


def perform_checked(session: Session, word: str) -> list[object]:
    """`session.perform(word)`; a single op that fails must leave the whole state unchanged,
    unless its explanation says what changed."""
    before = loop_state(session)
    events = session.perform(word)
    if len(events) == 1 and events[0].error is not None:
        error = events[0].error
        if not any(m in error.explanation for m in MOVED):
            after = loop_state(session)
            changed = [k for k in before if not same(before[k], after[k])]
            assert not changed, f"{word}: {error.type} changed {changed}: {error.explanation}"
    return events


@pytest.mark.parametrize("name", _op_cases())
def test_a_failed_op_leaves_the_state_unchanged_or_says_what_changed(name: str) -> None:
    session = Session.open(BROKEN / name)
    failed = 0
    for word in OP_ERRORS[name].words.split():
        failed += sum(1 for e in perform_checked(session, word) if e.error is not None)
    assert failed == sum(1 for _, error in OP_ERRORS[name].events if error)


def test_a_failed_forward_does_not_consume_its_batch() -> None:
    session = Session.open(BROKEN / "forward_fails_keeps_batch.py")
    seen = session.scenario.namespace["seen"]
    for word in ["f", "b", "s", "z"]:
        session.perform(word)
    [event] = perform_checked(session, "f")
    assert event.error is not None and (session.epoch, session.batch) == (1, 1)
    [event] = session.perform("f")
    assert event.ok and "batch 2" in event.summary
    assert seen == [1.0, 2.0, 2.0]  # the failed forward's batch, fed again


def test_a_loss_whose_value_cannot_be_read_is_not_kept() -> None:
    session = Session.open(BROKEN / "item_fails_in_forward.py")
    session.perform("f")
    loss, value = session.loss, session.loss_value
    [event] = perform_checked(session, "f")
    assert event.error is not None and UNCHANGED in event.error.explanation
    assert session.loss is loss and session.loss_value == value and session.forward_count == 1


def test_a_complex_loss_is_refused_and_undo_then_works() -> None:
    session = Session.open(BROKEN / "complex_loss.py")
    [event] = session.perform("f")
    assert event.error is not None and session.loss is None and session.forward_count == 0
    [undo] = session.perform("u")
    assert undo.ok and session.history.position == 0


def test_a_step_that_moves_a_parameter_without_a_gradient_says_so() -> None:
    session = Session.open(BROKEN / "step_moves_without_grad.py")
    [event] = session.perform("s")
    assert "changed t in place without a gradient" in event.summary
    assert "moved nothing" not in event.summary + " ".join(w.message for w in event.warnings)


def test_an_inplace_change_in_forward_is_not_blamed_on_step(tmp_path: Path) -> None:
    session = Session.open(BROKEN / "inplace_in_forward.py")
    session.perform("f")
    [event] = session.perform("b")
    assert event.error is not None and "fill_()" in event.error.explanation
    assert not event.error.explanation.startswith("step()")
    path = tmp_path / "stale.py"  # a real step between forward and backward: step's doing
    path.write_text(
        "import torch\nw = torch.tensor([1.0, 2.0], requires_grad=True)\n"
        "optimizer = torch.optim.SGD([w], lr=0.1)\ndef forward():\n    return (w * w).sum()\n"
    )
    session = Session.open(path)
    *_, event = [e for word in ["f", "b", "f", "s", "b"] for e in session.perform(word)]
    assert event.error is not None and event.error.explanation.startswith("step() updated")


def test_scenario_code_cannot_keep_its_signal_timer_or_recursion_limit() -> None:
    limit = sys.getrecursionlimit()
    before = signal.getsignal(signal.SIGALRM)
    session = Session.open(BROKEN / "signal_alarm_at_load.py")
    assert sys.getrecursionlimit() == limit
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    for word in ["f", "b", "s", "z"]:
        assert session.perform(word)[0].ok


ALARM_IN_FORWARD = """\
import signal, time, torch
t = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr=0.1)
def forward():
    signal.setitimer(signal.ITIMER_REAL, 0.01)
    end = time.monotonic() + 60
    while time.monotonic() < end:  # the alarm arrives in here
        pass
    return (t**2).sum()
"""


def test_a_timer_signal_in_scenario_code_stops_the_op_not_optdbg(tmp_path: Path) -> None:
    path = tmp_path / "alarm.py"
    path.write_text(ALARM_IN_FORWARD)
    before = signal.getsignal(signal.SIGALRM)
    session = Session.open(path)
    (event,) = session.perform("f")
    assert event.error is not None and event.error.type == "SignalArrived"
    assert event.error.message.startswith("SIGALRM arrived while the scenario's code ran")
    assert f"{path}:" in event.error.explanation  # a line of forward's
    assert ": raised while forward" in event.error.explanation
    assert session.loss is None and session.forward_count == 0
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert [e.op for e in session.perform("z")] == ["zero_grad"]


def test_torch_settings_of_one_scenario_do_not_leak_into_the_next() -> None:
    threads = torch.get_num_threads()
    session = Session.open(BROKEN / "torch_globals_at_load.py")
    try:
        assert session.perform("f")[0].ok and session.loss is not None
        assert session.loss.dtype == torch.float64  # its own ops see its settings
        other = Session.open("quadratic_bowl")
        assert torch.get_default_dtype() == torch.float32
        assert not torch.are_deterministic_algorithms_enabled()
        assert not torch.is_anomaly_enabled() and torch.is_grad_enabled()
        assert torch.get_num_threads() == threads
        assert other.perform("f")[0].ok and other.loss is not None
        assert other.loss.dtype == torch.float32
    finally:
        from optdbg.engine.guard import reset_torch

        reset_torch()


def test_a_long_source_line_and_a_huge_message_are_cut_with_their_line() -> None:
    with pytest.raises(ScenarioError) as info:
        load(BROKEN / "long_source_line.py")
    text = str(info.value)
    assert len(text) < 1500 and "    8 | y = xxx" in text and "more characters)" in text
    code, out, _err = run_cli("run", str(BROKEN / "huge_message_in_forward.py"), "--ops", "f")
    assert code == 0 and len(out) < 5000 and "huge_message_in_forward.py:14" in out


def test_ctrl_c_is_the_users_but_a_keyboard_interrupt_from_the_scenario_is_its_error() -> None:
    code, out, err = run_cli(
        "run", str(BROKEN / "keyboard_interrupt_in_forward.py"), "--ops", "f z", "--json"
    )
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["error"] and r["error"]["type"] for r in records] == ["KeyboardInterrupt", None]
    assert "interrupted" not in err


def test_the_scenarios_rebound_stdout_is_put_back_after_loading() -> None:
    code, out, err = run_cli(
        "run", str(BROKEN / "stdout_rebound_to_terminal.py"), "--ops", "f", "--json"
    )
    assert code == 0, err
    assert [json.loads(line)["op"] for line in out.splitlines()] == ["forward"]
    assert sys.stdout is not sys.__stdout__ or not hasattr(sys.stdout, "getvalue")


def test_control_characters_from_a_scenario_never_reach_the_output() -> None:
    path = str(BROKEN / "control_chars_in_text.py")
    for mode in ([], ["--json"], ["--quiet"]):
        code, out, err = run_cli("run", path, "--ops", "f b s z", *mode)
        assert code == 0, err
        assert not any(c in out + err for c in "\x1b\x07\r"), (mode, out + err)
    code, out, _err = run_cli("run", path, "--ops", "s")
    assert "w\\x1b[31m" in out  # the name, escaped, not dropped


def test_the_export_of_a_loss_that_is_the_parameter_says_what_it_is(tmp_path: Path) -> None:
    target = tmp_path / "g.dot"
    code, _out, err = run_cli("export", str(BROKEN / "loss_is_the_parameter.py"), "-o", str(target))
    assert code == 2 and "the loss is the parameter `w` itself" in err
    assert "does not require grad" not in err and not target.exists()


# ----------------------------------------------------------------- arguments and paths


def test_an_empty_ops_is_an_argument_error() -> None:
    for command in ("run", "export"):
        with pytest.raises(SystemExit) as info:
            run_cli(command, "quadratic_bowl", "--ops", "")
        assert info.value.code == 2


UNTIL_REFUSED = {
    "isnan((2**64)**64 * (2**64)**64 * (2**64)**64 * (2**64)**64)": None,
    "-" * 990 + "loss < 1": "nested more than",
    "1" * 999 + " > loss": None,
    "(loss - 9) ** 0.5 > 1": "cannot compare",
}


@pytest.mark.parametrize("condition", list(UNTIL_REFUSED), ids=range(len(UNTIL_REFUSED)))
def test_until_conditions_that_python_cannot_compute_are_clear(condition: str) -> None:
    """Refused as an argument (exit 2), or run with a clear stop message: no traceback."""
    try:
        code, out, err = run_cli(
            "run", "quadratic_bowl", "--until", condition, "--max-iterations", "3"
        )
    except SystemExit as e:  # argparse's error: exit 2 with the reason
        code, out, err = int(e.code or 0), "", ""
    assert TRACEBACK not in out + err
    assert code in (0, 2)
    if code == 0:
        assert "stopped: " in out


def test_until_a_condition_that_fails_only_at_run_time_stops_with_the_reason() -> None:
    session = Session.open("quadratic_bowl")
    result = session.run_until("(150 - loss) ** 0.5 > 100", max_iterations=5)
    assert result.reason == "error" and "the condition failed at op" in result.message


def test_a_run_of_non_finite_losses_stops_instead_of_running_on() -> None:
    session = Session.open(BROKEN / "nan_forever.py")
    result = session.run_until("loss < 0", max_iterations=1000)
    assert result.reason == "non-finite" and result.iterations == 2
    assert "nan at 3 forwards in a row" in result.message
    code, out, _err = run_cli("run", str(BROKEN / "nan_forever.py"), "--until", "loss < 0")
    assert code == 0 and "stopped: the loss has been nan" in out


def test_a_path_the_system_refuses_is_a_clear_load_error(tmp_path: Path) -> None:
    path = str(tmp_path / ("d" * 300 + ".py"))
    code, _out, err = run_cli("run", path)
    assert code == 2 and TRACEBACK not in err
    assert "cannot read the file: File name too long" in err


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "scenario.py"
    os.mkfifo(fifo)
    code, _out, err = run_cli("run", str(fifo))
    assert code == 2 and "not a regular file" in err


def test_export_shortens_a_default_name_past_what_the_file_system_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from optdbg.engine.export import NAME_BYTES, default_path

    name = "s" * 252
    path = tmp_path / f"{name}.py"
    path.write_text(
        "import torch\nt = torch.tensor([1.0], requires_grad=True)\n"
        "optimizer = torch.optim.SGD([t], lr=0.1)\ndef forward():\n    return (t * 2).sum()\n"
    )
    assert len(default_path(name, 3).name.encode()) <= NAME_BYTES
    monkeypatch.chdir(tmp_path)
    code, _out, err = run_cli("export", str(path))
    assert code in (0, 1), err  # 1: no renderer, the DOT written instead
    written = [p for p in tmp_path.iterdir() if p.suffix in (".png", ".dot")]
    assert len(written) == 1 and written[0].name.endswith("-op1" + written[0].suffix)


# ----------------------------------------------------------------- scale


def test_a_snapshot_after_a_step_grows_linearly_with_the_parameters(tmp_path: Path) -> None:
    """Counted, not timed: the Python lines a snapshot executes for n and 2n parameters."""

    def lines_for(n: int) -> int:
        path = tmp_path / f"many{n}.py"
        path.write_text(
            "import torch\n"
            f"ws = [torch.zeros(2, requires_grad=True) for _ in range({n})]\n"
            "optimizer = torch.optim.SGD(ws, lr=0.1)\n"
            "def forward():\n    return sum((w * w).sum() for w in ws) + 1\n"
        )
        session = Session.open(path)
        for word in ["f", "b", "s"]:
            session.perform(word)
        count = 0

        def trace(frame: object, event: str, arg: object) -> object:
            nonlocal count
            count += event == "line"
            return trace

        sys.settrace(trace)
        try:
            session.snapshot()
        finally:
            sys.settrace(None)
        return count

    small, big = lines_for(150), lines_for(300)
    assert big < 2.2 * small, (small, big)


def test_a_scheduler_that_raises_after_the_step_holds_plain_pytorchs_values() -> None:
    """optimizer.step() moved the parameters before the scheduler raised: the Session must
    hold exactly what a plain loop holds then (compared bit for bit by test_fidelity)."""
    from test_fidelity import check

    check(
        str(BROKEN / "scheduler_raises_in_step.py"),
        ["i", "i", "f", "b", "s", "n", "z", "f", "b", "s"],
    )
    session = Session.open(BROKEN / "scheduler_raises_in_step.py")
    for word in ["i", "i", "f", "b"]:
        session.perform(word)
    before = session.snapshot().param("w")
    [event] = session.perform("s")
    after = session.snapshot().param("w")
    assert event.error is not None and "have moved" in event.error.explanation
    assert before is not None and after is not None and after.value != before.value
    assert session.step_count == 3 and session.update_detail("w") is not None


def test_a_failed_forward_keeps_the_previous_loss_and_graph() -> None:
    """data_raises_midway: the third batch fails; the second batch's loss stays usable."""
    session = Session.open(BROKEN / "data_raises_midway.py")
    session.perform("f")
    session.perform("f")
    loss, graph = session.loss_value, session.graph()
    [event] = session.perform("f")
    assert event.error is not None and event.error.type == "OSError"
    assert session.loss_value == loss and session.graph() is graph
    assert session.perform("b")[0].ok and session.perform("s")[0].ok


def _cancel_running(session: Session, op: str, wait: Callable[[], bool]) -> object:
    """Run `op` on an EngineThread (as the TUI does), cancel it once `wait()` holds; the
    op's event. (How long the cancel takes to land is a figure of `python -m bench`.)"""
    engine = EngineThread(name="test-engine")
    finished = threading.Event()
    outcome: list[object] = []

    def done(result: object, error: BaseException | None) -> None:
        outcome.append(error if error is not None else result)
        finished.set()

    engine.submit(run_job(lambda: session.perform(op), done))
    deadline = time.monotonic() + 20
    while not wait():
        assert time.monotonic() < deadline, "the op never started"
        time.sleep(0.02)
    assert engine.elapsed is not None and not finished.is_set()
    assert engine.cancel()
    assert finished.wait(10), "cancel did not stop the op"
    engine.stop()
    return outcome[0]


@pytest.mark.parametrize("name", list(CANCELLED))
def test_a_runaway_forward_is_cancelled_and_the_session_carries_on(name: str) -> None:
    path = BROKEN / name
    session = Session.open(path)
    ns = session.scenario.namespace
    started = time.monotonic()
    if name == "unbounded_alloc.py":
        hoard = ns["hoard"]
        result = _cancel_running(session, "f", lambda: len(hoard) >= 20)
        grown = len(hoard)
        time.sleep(0.1)
        assert len(hoard) == grown < ns["SAFETY_CAP"]  # stopped growing at the cancel
    else:
        result = _cancel_running(session, "f", lambda: time.monotonic() - started > 0.3)
    assert isinstance(result, list)
    [event] = result
    assert event.error is not None and event.error.type == "OpCancelled"
    assert names_a_line(event.error.explanation, str(path)), event.error.explanation
    assert session.loss is None and session.snapshot().op_count == 1
    assert session.perform("s")[0].ok and session.perform("z")[0].ok


# ----------------------------------------------------------------- the CLI, in process


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli_main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("name", cases([n for n in CORPUS if n not in HUGE | set(CANCELLED)]))
def test_cli_outcome_for_every_broken_file(name: str) -> None:
    """`optdbg run FILE --ops OPS --json`: exit 2 and one message, or exit 0 and JSON."""
    path = BROKEN / name
    words = OP_ERRORS[name].words if name in OP_ERRORS else "f b s z"
    code, out, err = run_cli("run", str(path), "--ops", words, "--json")
    assert TRACEBACK not in out + err
    if name in LOAD_ERRORS:
        want = LOAD_ERRORS[name]
        assert code == 2 and out == ""
        lines = err.splitlines()
        assert lines[0] == "optdbg: cannot load the scenario"
        where = f"{path}:{want.line}: " if want.line else f"{path}: "
        assert lines[1].startswith(where) and want.text in lines[1]
        return
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    got = [(r["op"], r["error"]["type"] if r["error"] else None) for r in records]
    assert got == list(OP_ERRORS[name].events)
    for r in records:
        if r["error"]:
            assert set(r["error"]) == {"type", "message", "explanation"}


# ----------------------------------------------------------------- the installed script


def optdbg(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(OPTDBG), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


SUBSET = [
    "syntax_unclosed_paren.py",
    "sys_exit_at_load.py",
    "sys_exit_in_forward.py",
    "nan_from_start.py",
]
"""Through the installed script (a Python start and a torch import each); the in-process
test above runs the same CLI code on every file."""


def listing(folder: Path) -> list[tuple[str, int, int]]:
    """Every file and folder under `folder`, with its size and modification time."""
    return sorted(
        (str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
    )


@pytest.mark.parametrize("name", cases(SUBSET))
def test_installed_cli_never_prints_a_traceback_nor_writes_files(name: str, tmp_path: Path) -> None:
    """Run from the scenario's folder, by a relative path: the message names it as given,
    and `run` leaves the working directory exactly as it was (no cache, no log)."""
    shutil.copy(BROKEN / name, tmp_path / name)
    before = listing(tmp_path)
    words = OP_ERRORS[name].words if name in OP_ERRORS else "f b s z"
    proc = optdbg("run", name, "--ops", words, "--json", cwd=tmp_path)
    assert TRACEBACK not in proc.stdout + proc.stderr
    assert listing(tmp_path) == before
    if name in LOAD_ERRORS:
        line = LOAD_ERRORS[name].line
        assert proc.returncode == 2 and proc.stdout == ""
        assert proc.stderr.startswith(f"optdbg: cannot load the scenario\n{name}:{line}: ")
    else:
        assert proc.returncode == 0, proc.stderr
        records = [json.loads(line) for line in proc.stdout.splitlines()]
        assert len(records) == len(OP_ERRORS[name].words.split())
        if name == "nan_from_start.py":
            assert records[0]["loss"] != records[0]["loss"]  # NaN, read back by json


def test_installed_cli_exits_when_the_scenario_leaves_a_thread_running() -> None:
    proc = optdbg("run", str(BROKEN / "thread_at_load.py"), "--ops", "f b s z", "--json")
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["op"] for line in proc.stdout.splitlines()] == [
        "forward",
        "backward",
        "step",
        "zero_grad",
    ]
    assert "left 1 thread(s) running (scenario-worker)" in proc.stderr


def test_installed_cli_keeps_json_apart_from_what_the_scenario_writes() -> None:
    """The scenario rebinds sys.stdout to the real one and writes to descriptor 1: stdout
    still holds only the records, the scenario's text lands on stderr."""
    proc = optdbg("run", str(BROKEN / "stdout_rebound_to_terminal.py"), "--ops", "f f", "--json")
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["op"] for line in proc.stdout.splitlines()] == ["forward"] * 2
    assert "\x1b" not in proc.stdout
    assert proc.stderr.count("raw noise on fd 1") == 2 and "noise on stdout" in proc.stderr


def test_installed_cli_summarizes_a_huge_tensor() -> None:
    """10^8 elements: every record holds a summary of a few numbers, not the values."""
    proc = optdbg("run", str(BROKEN / "huge_tensor.py"), "--ops", "f b s z", "--json")
    assert proc.returncode == 0, proc.stderr
    assert TRACEBACK not in proc.stdout + proc.stderr
    assert len(proc.stdout) < 4000
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["op"] for r in records] == ["forward", "backward", "step", "zero_grad"]
    keys = {"shape", "mean", "std", "min", "max", "norm"}
    for r in records:
        assert set(r["params"]["w"]) == keys and r["params"]["w"]["shape"] == [10**8]
        assert r["error"] is None
    assert records[1]["grads"]["w"]["mean"] == -2.0
    assert records[2]["params"]["w"]["mean"] == 1.0  # 0 - 0.5 * (-2)
    assert records[3]["grads"]["w"] is None


def test_ctrl_c_during_a_hanging_op_ends_the_cli_without_a_traceback() -> None:
    proc = subprocess.Popen(
        [str(OPTDBG), "run", str(BROKEN / "hanging_forward.py"), "--ops", "z f", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        # a background child of a non-interactive shell ignores SIGINT: restore it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # zero_grad done: forward is running now
        assert json.loads(first)["op"] == "zero_grad"
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert TRACEBACK not in out + err, err
    assert proc.returncode in (1, 2, 130, -signal.SIGINT)


# ----------------------------------------------------------------- the TUI


async def wait_for(pilot: Pilot[None], condition: Callable[[], bool], seconds: float) -> None:
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not reached")


def error_text(app: OptDbgApp) -> str:
    return str(app.query_one("#error-text").render())


async def test_tui_load_error_is_shown_then_fixed_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "raises_at_load.py"
    shutil.copy(BROKEN / "raises_at_load.py", path)
    app = OptDbgApp(scenario=path)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        assert app.has_class("-failed") and app.session is None
        text = error_text(app)
        assert f"{path}:9" in text and "ZeroDivisionError" in text and "press r" in text
        assert TRACEBACK not in text
        await press(pilot, "f", "b")  # op keys do nothing, and nothing breaks
        assert app.has_class("-failed")
        path.write_text(path.read_text().replace("1 / 0", "1.0"))
        await press(pilot, "r")
        assert not app.has_class("-failed")
        await press(pilot, "f")
        assert "loss 3" in status(app)


async def test_tui_forward_exception_is_logged_and_the_app_stays_usable() -> None:
    path = BROKEN / "raises_in_forward.py"
    app = OptDbgApp(Session.open(path))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "f")
        text = log_text(app)
        assert "ValueError" in text and "the scenario's own bug" in text
        assert f"{path.name}:14" in text.replace(" ", "")
        assert any(n.severity == "error" for n in app._notifications)
        await press(pilot, "s", "z")
        assert app.view is not None and app.view.snapshot.op_count == 3
        await press(pilot, "r")
        assert app.view is not None and app.view.snapshot.op_count == 0


async def test_tui_non_scalar_loss_warns_then_backward_is_refused() -> None:
    app = OptDbgApp(Session.open(BROKEN / "non_scalar_loss.py"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "f")
        assert "loss-not-scalar" in log_text(app)
        await press(pilot, "b")
        text = log_text(app)
        assert "RuntimeError" in text and "scalar outputs" in text and ".sum()" in text
        await press(pilot, "f", "s")
        assert app.view is not None and app.view.snapshot.op_count == 4


async def test_tui_nan_from_the_start_is_shown_not_fatal() -> None:
    app = OptDbgApp(Session.open(BROKEN / "nan_from_start.py"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "f", "b", "s", "z", "i")
        assert "nan" in status(app).lower()
        assert app.view is not None and app.view.snapshot.op_count == 8
        assert "w" in [p.name for p in app.view.snapshot.params]


async def test_tui_keeps_the_scenarios_prints_off_the_screen(
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = OptDbgApp(scenario=BROKEN / "prints_to_stdout.py")  # loaded inside the app
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await press(pilot, "f", "b", "f")
        assert app.view is not None and app.view.snapshot.op_count == 3
    out, err = capsys.readouterr()
    assert "scenario loaded" not in out + err and "loss is" not in out + err


@pytest.mark.parametrize("name", list(CANCELLED))
async def test_tui_cancels_a_runaway_forward_and_stays_usable(name: str) -> None:
    path = BROKEN / name
    app = OptDbgApp(Session.open(path))
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("f")
        await wait_for(pilot, lambda: "escape: cancel" in status(app), 10)
        await pilot.press("escape")
        await settle(pilot)
        text = log_text(app)
        assert "OpCancelled" in text and names_a_line(text.replace(" ", ""), name)
        await press(pilot, "z", "s")
        assert app.view is not None and app.view.snapshot.op_count == 3
        if name == "unbounded_alloc.py":
            assert app.session is not None
            assert len(app.session.scenario.namespace["hoard"]) < 1000


# ----------------------------------------------------------------- a hanging op never freezes


async def test_keys_work_while_an_op_hangs_then_escape_cancels_it() -> None:
    app = OptDbgApp(Session.open(BROKEN / "hanging_forward.py"))
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("f")
        await wait_for(pilot, lambda: "escape: cancel" in status(app), 10)
        first = status(app)
        await pilot.press("question_mark")  # the UI thread is free: help opens
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), 5)
        await pilot.press("escape")  # closes help; the op still runs
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), 5)
        assert app.busy
        await pilot.press("3", "1")  # panel switches are handled too
        await pilot.pause(0.6)
        assert status(app) != first  # the elapsed time keeps moving
        await pilot.press("s")  # queued behind the hanging op, shown as such
        await wait_for(pilot, lambda: "1 queued" in status(app), 5)
        await pilot.press("escape")
        await settle(pilot)
        assert "OpCancelled" in log_text(app)
        assert app.view is not None and app.view.snapshot.op_count == 1  # queue dropped
        await press(pilot, "s")
        assert app.view.snapshot.op_count == 2


async def test_quit_works_while_an_op_hangs() -> None:
    app = OptDbgApp(Session.open(BROKEN / "hanging_forward.py"))
    engine = None
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("f")
        await wait_for(pilot, lambda: "escape: cancel" in status(app), 10)
        engine = app.engine
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, 5)
    assert app.return_code in (0, None)
    if engine is not None and engine.alive:  # the test process lives on: stop the loop
        engine.cancel()


async def test_reload_while_an_op_hangs_gives_a_fresh_usable_session() -> None:
    app = OptDbgApp(Session.open(BROKEN / "hanging_forward.py"))
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("f")
        await wait_for(pilot, lambda: "escape: cancel" in status(app), 10)
        old = app.engine
        assert old is not None
        try:
            await press(pilot, "r")  # a fresh session on a fresh engine thread
            assert app.engine is not old and not app.busy
            await press(pilot, "s", "z")
            assert app.view is not None and app.view.snapshot.op_count == 2
            assert "OpCancelled" not in log_text(app)
        finally:
            if old.alive:  # see the test below: the old op is still running
                old.cancel()


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_the_real_tui_quits_promptly_while_a_forward_hangs() -> None:
    """End to end in a pseudo-terminal: `optdbg FILE`, f (never returns), q: the process
    ends within seconds with status 0 and prints no traceback."""
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # the child: become optdbg on the terminal
        os.environ.update(TERM="xterm-256color", COLUMNS="100", LINES="30")
        os.execv(str(OPTDBG), [str(OPTDBG), str(BROKEN / "hanging_forward.py")])
    shown = b""

    def read(seconds: float, until: bytes | None = None) -> None:
        nonlocal shown
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (until and until in shown):
            if select.select([fd], [], [], 0.05)[0]:
                try:
                    shown += os.read(fd, 1 << 16)
                except OSError:
                    return

    status: int | None = None
    try:
        read(90, until=b"press f")
        assert b"press f" in shown, shown[-500:]
        os.write(fd, b"f")
        read(30, until=b"escape: cancel")
        assert b"escape: cancel" in shown
        os.write(fd, b"q")
        end = time.monotonic() + 15
        while status is None and time.monotonic() < end:
            done, code = os.waitpid(pid, os.WNOHANG)
            status = code if done else None
            read(0.1)
        assert status is not None, "optdbg did not quit while the forward hung"
        assert os.waitstatus_to_exitcode(status) == 0
        assert TRACEBACK.encode() not in shown
    finally:
        if status is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)


async def test_reload_while_an_op_hangs_stops_the_old_op() -> None:
    app = OptDbgApp(Session.open(BROKEN / "hanging_forward.py"))
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("f")
        await wait_for(pilot, lambda: "escape: cancel" in status(app), 10)
        old = app.engine
        assert old is not None
        try:
            await press(pilot, "r")
            await wait_for(pilot, lambda: not old.alive, 3)
        finally:
            if old.alive:
                old.cancel()


# ----------------------------------------------------------------- safety


def test_run_writes_nothing_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every built-in and a scenario file in the cwd, run in process: no file appears."""
    from optdbg.engine import builtin_names

    shutil.copy(BROKEN / "data_raises_midway.py", tmp_path / "mine.py")
    monkeypatch.chdir(tmp_path)
    before = listing(tmp_path)
    for spec in [*builtin_names(), "mine.py"]:
        code, _out, err = run_cli("run", spec, "--ops", "i f b b s z", "--json")
        assert code == 0, err
    code, _out, err = run_cli("run", "mine.py", "--quiet")
    assert code == 0
    assert listing(tmp_path) == before


def test_export_never_replaces_a_file_without_force(tmp_path: Path) -> None:
    target = tmp_path / "graph.dot"
    target.write_text("the user's own file\n")
    code, _out, err = run_cli("export", "quadratic_bowl", "--ops", "f", "-o", str(target))
    assert code == 2 and "already exists" in err and "--force" in err
    assert target.read_text() == "the user's own file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph.dot"]  # no temp left over
    code, _out, err = run_cli(
        "export", "quadratic_bowl", "--ops", "f", "-o", str(target), "--force"
    )
    assert code == 0, err
    assert target.read_text().startswith("digraph")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph.dot"]


SOURCE_DIRS = [Path(__file__).parents[1] / d for d in ("engine", "tui")]
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "marshal"}


def test_no_module_of_optdbg_loads_pickles() -> None:
    """No pickle import, and no torch.load (which unpickles) anywhere in engine/ or tui/."""
    files = [f for d in SOURCE_DIRS for f in sorted(d.rglob("*.py"))]
    assert len(files) > 10
    for file in files:
        tree = ast.parse(file.read_text(encoding="utf-8"), str(file))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in UNSAFE_MODULES, f"{file}: imports {name}"
            if isinstance(node, ast.Attribute) and node.attr == "load":
                base = node.value
                assert not (isinstance(base, ast.Name) and base.id == "torch"), (
                    f"{file}:{node.lineno}: torch.load unpickles"
                )


class NoNetwork(Exception):
    pass


def test_loading_and_running_never_touches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from optdbg.engine import builtin_names

    def refuse(*args: object, **kwargs: object) -> None:
        raise NoNetwork(f"network access: {args!r}")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    for name in builtin_names():
        session = Session.open(name)
        for word in ["i", "f", "b", "b", "s", "z", "n", "n"]:
            for event in session.perform(word):
                assert event.error is None or "NoNetwork" not in event.error.type, event
        _observe(session)


# ----------------------------------------------------------------- unusual tensors

UNUSUAL = {
    "bfloat16": ("torch.randn(3, dtype=torch.bfloat16, requires_grad=True)", "(w * w).sum()"),
    "float16_large": ("torch.randn(100, dtype=torch.float16, requires_grad=True)", "(w * w).sum()"),
    "float64": ("torch.randn(3, dtype=torch.float64, requires_grad=True)", "(w * w).sum()"),
    "zero_dim": ("torch.tensor(3.0, requires_grad=True)", "w * w"),
    "empty": ("torch.zeros(0, requires_grad=True)", "(w * w).sum()"),
    "non_contiguous": ("torch.randn(4, 3).t().requires_grad_()", "(w * w).sum()"),
    "complex": (
        "torch.randn(3, dtype=torch.complex64, requires_grad=True)",
        "(w * w.conj()).real.sum()",
    ),
    "sparse_grad": (
        "emb.weight",
        "emb(torch.tensor([1, 2, 2])).pow(2).sum()",
        "emb = torch.nn.Embedding(10, 3, sparse=True)\n",
    ),
}


@pytest.mark.parametrize("kind", list(UNUSUAL))
def test_unusual_parameters_are_shown_without_crashing(kind: str, tmp_path: Path) -> None:
    make, loss, *prelude = UNUSUAL[kind]
    path = tmp_path / f"{kind}.py"
    path.write_text(
        "import torch\n" + "".join(prelude) + f"w = {make}\n"
        "optimizer = torch.optim.SGD([w], lr=0.1)\n"
        "def forward():\n"
        f"    return {loss}\n"
    )
    code, out, err = run_cli("run", str(path), "--ops", "f b s f b z i", "--json")
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["error"] for r in records] == [None] * 10
    session = Session.open(path)
    for word in ["f", "b", "s", "f", "b"]:
        session.perform(word)
        _observe(session)
