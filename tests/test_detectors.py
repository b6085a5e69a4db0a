"""Pitfall detectors: each mistake is named on the op where it happens, never on a correct loop.

Every test builds the situation from a scenario (a built-in or a small file written to
tmp_path) and an op order, then asserts on which events carry which codes: the op of the
mistake, not an earlier one and not a later one.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from optdbg.engine import Event, ScenarioError, Session, builtin_names
from optdbg.engine.pitfalls import (
    CATALOGUE,
    CODES,
    EXPLANATIONS,
    Thresholds,
    diagnose,
    measure,
)

OPTDBG = Path(sys.executable).parent / "optdbg"

ISSUE_CODES = {
    "grad-accumulated",
    "step-without-grad",
    "stale-grad",
    "backward-twice",
    "stale-graph",
    "param-not-in-graph",
    "param-not-in-optimizer",
    "frozen-param",
    "loss-not-scalar",
    "loss-no-grad",
    "diverging",
    "non-finite",
    "exploding-grad",
    "vanishing-grad",
    "plateau",
    "scheduler-order",
}
SECOND_CATALOGUE = {  # issue 16
    "eval-mode-training",
    "softmax-before-ce",
    "loss-broadcast",
    "init-loss-mismatch",
    "loss-at-chance",
    "clip-order",
    "update-ratio",
    "dead-relu",
    "decay-on-bias-norm",
    "loss-history-retained",
    "param-replaced",
    "inplace-saved-tensor",
    "optimizer-recreated",
    "lr-schedule-odd",
}

BOWL = """
import torch
t = torch.tensor([10.0, 10.0], requires_grad=True)
optimizer = torch.optim.SGD([t], lr={lr})
{extra}
def forward():
    return (t[0] - 3) ** 2 + (t[1] + 2) ** 2 + 8
"""


def write(tmp_path: Path, source: str, name: str = "scenario.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    return path


def bowl(tmp_path: Path, lr: float, extra: str = "") -> Path:
    return write(tmp_path, BOWL.format(lr=lr, extra=extra))


def run(session: Session, ops: str, repeat: int = 1) -> list[Event]:
    events: list[Event] = []
    for _ in range(repeat):
        for word in ops.split():
            events += session.perform(word)
    assert not [e.observer_errors for e in events if e.observer_errors]
    return events


def warned(events: list[Event], code: str | None = None) -> dict[int, tuple[str, ...]]:
    """{event index: codes} for the events that carry warnings (of `code` if given)."""
    found = {}
    for e in events:
        codes = tuple(c for c in e.codes() if code is None or c == code)
        if codes:
            found[e.index] = codes
    return found


def only(events: list[Event], code: str) -> Event:
    """The one event carrying `code`; no other event carries any warning."""
    at = warned(events)
    assert len(at) == 1 and code in next(iter(at.values())), at
    return events[next(iter(at))]


def message(event: Event, code: str) -> str:
    return next(w.message for w in event.warnings if w.code == code)


# ----------------------------------------------------------------- the catalogue


def test_catalogue_covers_the_issue_codes() -> None:
    # replay-diverged: the history's own warning; overfitting: issue 14's evaluate; the ddp
    # codes: trace's, under torchrun (tests/test_trace.py)
    extra = {"replay-diverged", "overfitting", "ddp-grads-differ", "ddp-step-skipped"}
    assert set(CODES) == ISSUE_CODES | SECOND_CATALOGUE | extra
    for code, (meaning, fix) in EXPLANATIONS.items():
        assert meaning and fix, code
    assert all(callable(d) for _, d in CATALOGUE)


# ----------------------------------------------------------------- no false alarms

# Iterations of a plain correct loop each built-in must survive silently.
SILENT_FOR = dict.fromkeys(builtin_names(), 200) | {
    "polynomial_sin": 2000,  # its docstring runs 2000 iterations
    "classifier_adam": 60,  # 6 epochs of mini-batches
    "mlp_sequential": 100,
    "linear_regression_minibatch": 150,
    "log_xy": 52,  # the loss has no minimum: NaN at the 53rd forward (see below)
    "lr_schedule": 80,  # the decayed lr stalls the loss: lr-schedule-odd, plateau (see below)
    "quadratic_bowl_lr10": 1,  # diverges by design (see below)
}


@pytest.mark.parametrize("name", builtin_names())
def test_correct_loop_on_every_builtin_raises_no_warning(name: str) -> None:
    session = Session.open(name)
    assert session.detectors.pending == ()
    events = run(session, "i", repeat=SILENT_FOR[name])
    assert all(e.ok for e in events)
    assert warned(events) == {}, [w.message for e in events for w in e.warnings][:3]


@pytest.mark.parametrize("name", ["quadratic_bowl", "mlp_sequential", "linear_regression"])
def test_correct_loop_spelled_op_by_op_raises_no_warning(name: str) -> None:
    events = run(Session.open(name), "f b s z", repeat=60)
    assert warned(events) == {}
    events = run(Session.open(name), "z f b s", repeat=60)  # the CLI's default order
    assert warned(events) == {}


def test_lr10_warns_only_of_divergence() -> None:
    session = Session.open("quadratic_bowl_lr10")
    events = run(session, "i", repeat=40)
    at = warned(events)
    assert set(c for codes in at.values() for c in codes) == {
        "diverging",
        "exploding-grad",
        "non-finite",
    }
    assert at[4] == ("diverging",)  # the second forward: 69681 after 201
    assert "lr=10" in message(events[4], "diverging")
    assert "69681" in message(events[4], "diverging")
    assert at[60] == ("non-finite",)  # the loss is inf from iteration 16, as documented
    assert math.isinf(events[60].loss)
    assert all(math.isfinite(e.loss) for e in events[:60] if e.op == "forward")
    assert list(at).count(60) == 1 and sum(c == ("diverging",) for c in at.values()) == 1


def test_log_xy_warns_when_its_loss_turns_nan() -> None:
    events = run(Session.open("log_xy"), "i", repeat=60)
    at = warned(events)
    first = min(at)
    assert first == 52 * 4 and events[first].op == "forward"  # the 53rd forward
    assert math.isnan(events[first].loss)
    assert {c for codes in at.values() for c in codes} <= {"non-finite"}


def test_lr_schedule_plateaus_once_its_lr_has_decayed() -> None:
    events = run(Session.open("lr_schedule"), "i", repeat=160)
    at = warned(events)
    assert list(at.values()) == [("lr-schedule-odd",), ("plateau",)]
    odd, index = at
    # 0.1 * 0.9**k < 1e-4 from k = 66: 20 steps later the lr has been ~0 for 20 steps
    assert odd == 84 * 4 + 2 and events[odd].op == "step"
    assert "below 0.001 of its start for the last 20 of 85 steps" in message(
        events[odd], "lr-schedule-odd"
    )
    assert 120 * 4 < index < 160 * 4
    text = message(events[index], "plateau")
    assert "learning rate" in text and "decay" in text


# ----------------------------------------------------------------- per-op mistakes


def test_grad_accumulated_keeps_its_message() -> None:
    events = run(Session.open("dag_toy"), "f b f b")
    event = only(events, "grad-accumulated")
    assert event.index == 3
    assert message(event, "grad-accumulated") == (
        "b.grad is -4: the sum of 2 backward passes since the last zero_grad (this pass "
        "added -2). PyTorch adds new gradients to .grad; call optimizer.zero_grad() before "
        "backward."
    )
    assert event.warnings[0].param == "b"


def test_step_without_grad(tmp_path: Path) -> None:
    events = run(Session.open("quadratic_bowl"), "s")
    assert only(events, "step-without-grad").index == 0
    assert "no backward has run yet" in message(events[0], "step-without-grad")

    events = run(Session.open("quadratic_bowl"), "f b s z s")
    event = only(events, "step-without-grad")
    assert event.index == 4
    text = message(event, "step-without-grad")
    assert "zero_grad at op 3" in text and "t.grad is None" in text and "backward" in text


def test_step_without_grad_when_zero_grad_keeps_zeros(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        import torch
        t = torch.tensor([10.0, 10.0], requires_grad=True)

        class SGDZeros(torch.optim.SGD):
            def zero_grad(self, set_to_none=False):
                super().zero_grad(set_to_none=set_to_none)

        optimizer = SGDZeros([t], lr=0.1)

        def forward():
            return (t ** 2).sum()
        """,
    )
    events = run(Session.open(path), "f b s z s")
    assert only(events, "step-without-grad").index == 4
    assert "t.grad is zero" in message(events[4], "step-without-grad")
    assert warned(run(Session.open(path), "i", repeat=30)) == {}


def test_stale_grad() -> None:
    events = run(Session.open("quadratic_bowl"), "f b s s")
    event = only(events, "stale-grad")
    assert event.index == 3
    text = message(event, "stale-grad")
    assert "t.grad = [14, 24]" in text and "op 2" in text and "f b" in text
    assert event.warnings[0].param == "t"
    # a step after a fresh backward is fine, even without zero_grad in between
    events = run(Session.open("quadratic_bowl"), "f b s f b s")
    assert warned(events) == {4: ("grad-accumulated",)}


def test_backward_twice_is_explained_on_the_error_event() -> None:
    events = run(Session.open("mlp_sequential"), "f b b")
    event = only(events, "backward-twice")
    assert event.index == 2 and not event.ok
    assert "second time" in event.error.message
    text = message(event, "backward-twice")
    assert "op 0" in text and "op 1" in text and "retain_graph" in text and "forward" in text
    events = run(Session.open("dag_toy"), "f b s b")  # after a step: still the freed graph
    assert warned(events) == {3: ("backward-twice",)}


def test_stale_graph_silent_in_pytorch() -> None:
    session = Session.open("quadratic_bowl")
    events = run(session, "f b f s z b")
    event = only(events, "stale-graph")
    assert event.index == 5 and event.ok  # PyTorch said nothing
    text = message(event, "stale-graph")
    assert "forward at op 2" in text and "step at op 3" in text
    assert "did not complain" in text and "t.grad is now [14, 24]" in text
    # forward again after the step: fine
    assert warned(run(Session.open("quadratic_bowl"), "f b f s z f b")) == {}


def test_stale_graph_refused_by_pytorch() -> None:
    events = run(Session.open("mlp_sequential"), "f b f s z b")
    event = only(events, "stale-graph")
    assert event.index == 5 and not event.ok
    assert "inplace" in event.error.message
    assert "refused" in message(event, "stale-graph")


def test_step_that_moved_nothing_does_not_make_the_graph_stale() -> None:
    events = run(Session.open("quadratic_bowl"), "f s b")
    assert warned(events) == {1: ("step-without-grad",)}


def test_loss_not_scalar(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        import torch
        t = torch.tensor([1.0, 2.0], requires_grad=True)
        optimizer = torch.optim.SGD([t], lr=0.1)

        def forward():
            return t * 2
        """,
    )
    events = run(Session.open(path), "f b")
    assert warned(events) == {0: ("loss-not-scalar",)}
    assert "shape (2)" in message(events[0], "loss-not-scalar")
    assert not events[1].ok


def test_loss_no_grad_at_forward_before_the_backward_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        import torch
        t = torch.tensor([1.0, 2.0], requires_grad=True)
        optimizer = torch.optim.SGD([t], lr=0.1)

        def forward():
            with torch.no_grad():
                return (t ** 2).sum()
        """,
    )
    events = run(Session.open(path), "f b")
    assert warned(events) == {0: ("loss-no-grad",)}
    assert "torch.no_grad()" in message(events[0], "loss-no-grad")
    assert "(5)" in message(events[0], "loss-no-grad")
    assert not events[1].ok and "grad_fn" in events[1].error.message


def test_loss_no_grad_when_no_parameter_requires_grad(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        import torch
        t = torch.tensor([1.0, 2.0])
        optimizer = torch.optim.SGD([t], lr=0.1)

        def forward():
            return (t ** 2).sum()
        """,
    )
    session = Session.open(path)
    events = run(session, "f")
    assert events[0].codes() == ("frozen-param", "loss-no-grad")
    assert "requires_grad=True" in message(events[0], "loss-no-grad")


# ----------------------------------------------------------------- parameters


def test_param_not_in_graph(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        import torch
        t = torch.tensor([1.0, 2.0], requires_grad=True)
        u = torch.tensor([3.0], requires_grad=True)
        optimizer = torch.optim.SGD([t, u], lr=0.1)

        def forward():
            return (t ** 2).sum()
        """,
    )
    events = run(Session.open(path), "f b s z", repeat=5)
    event = only(events, "param-not-in-graph")
    assert event.index == 1 and event.warnings[0].param == "u"
    text = message(event, "param-not-in-graph")
    assert text.startswith("u has no gradient") and "forward at op 0" in text


def test_param_not_in_optimizer(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        import torch
        t = torch.tensor([1.0, 2.0], requires_grad=True)
        scale = torch.tensor(3.0, requires_grad=True)
        optimizer = torch.optim.SGD([t], lr=0.1)

        def forward():
            return (scale * t ** 2).sum()
        """,
    )
    events = run(Session.open(path), "f b s z", repeat=5)
    event = only(events, "param-not-in-optimizer")
    assert event.index == 1 and event.warnings[0].param == "scale"
    text = message(event, "param-not-in-optimizer")
    assert "scale (shape scalar)" in text and "norm 5" in text and "optimizer" in text


def test_module_param_not_in_optimizer(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        import torch
        from torch import nn
        model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
        X = torch.ones(4, 2)
        y = torch.zeros(4, 1)
        data = [(X, y)]
        loss_fn = nn.MSELoss()
        optimizer = torch.optim.SGD(model[1].parameters(), lr=0.1)
        """,
    )
    events = run(Session.open(path), "i", repeat=3)
    assert warned(events) == {1: ("param-not-in-optimizer", "param-not-in-optimizer")}
    assert {w.param for w in events[1].warnings} == {"model.0.weight", "model.0.bias"}


def test_frozen_param_on_the_first_op(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        import torch
        t = torch.tensor([1.0, 2.0], requires_grad=True)
        w = torch.tensor([5.0])
        optimizer = torch.optim.SGD([t, w], lr=0.1)

        def forward():
            return (t ** 2).sum() + w.sum()
        """,
    )
    session = Session.open(path)
    assert [f.code for f in session.detectors.pending] == ["frozen-param"]
    [diagnosis] = session.findings()  # visible before any op
    assert diagnosis.code == "frozen-param" and diagnosis.params == ("w",)
    events = run(session, "i", repeat=3)
    event = only(events, "frozen-param")
    assert event.index == 0 and event.warnings[0].param == "w"
    assert "requires_grad=False" in message(event, "frozen-param")
    # the first op carries it whatever it is
    assert run(Session.open(path), "s")[0].codes()[0] == "frozen-param"


# ----------------------------------------------------------------- trends


def test_diverging_by_consecutive_rises(tmp_path: Path) -> None:
    events = run(Session.open(bowl(tmp_path, 1.05)), "i", repeat=12)
    event = only(events, "diverging")
    assert event.index == 20 and event.op == "forward"  # the 6th forward: 5 rises
    text = message(event, "diverging")
    assert "201 → 241.5" in text and "lr=1.05" in text and "5 forwards" in text


def test_diverging_thresholds_are_configurable(tmp_path: Path) -> None:
    path = bowl(tmp_path, 1.05, 'optdbg_config = {"diverge_rises": 2, "diverge_min_rise": 0.2}')
    events = run(Session.open(path), "i", repeat=12)
    assert only(events, "diverging").index == 8  # the 3rd forward: 2 rises by 45%


def test_maximizing_is_not_diverging() -> None:
    events = run(Session.open("dag_toy"), "i", repeat=60)  # its loss rises on purpose
    assert warned(events) == {}


def test_plateau(tmp_path: Path) -> None:
    events = run(Session.open(bowl(tmp_path, 1e-9)), "i", repeat=60)
    event = only(events, "plateau")
    assert event.index == 50 * 4 and event.op == "forward"  # the 51st forward
    text = message(event, "plateau")
    assert "50 forwards" in text and "lr=1e-09" in text and "100% of its largest" in text


def test_plateau_patience_is_configurable(tmp_path: Path) -> None:
    path = bowl(tmp_path, 1e-9, 'optdbg_config = {"plateau_patience": 5}')
    events = run(Session.open(path), "i", repeat=20)
    assert only(events, "plateau").index == 5 * 4


def test_converged_is_not_a_plateau() -> None:
    events = run(Session.open("quadratic_bowl_lr025"), "i", repeat=200)
    assert events[-4].loss == 8.0
    assert warned(events) == {}


def _gradient_jump(tmp_path: Path, factor: float, value: bool = False) -> Path:
    # the gradient changes at the 8th forward; the loss value too when `value`, else it stays
    keep = "loss * s" if value else "loss * s + (loss * (1 - s)).detach()"
    return write(
        tmp_path,
        f"""
        import torch
        t = torch.tensor([1.0, 2.0], requires_grad=True)
        # lr 1e-4: t stays nearly put (the 1e4 jump's step turns it into -t, the same loss)
        optimizer = torch.optim.SGD([t], lr=1e-4)
        calls = [0]

        def forward():
            calls[0] += 1
            s = {factor} if calls[0] == 8 else 1.0
            loss = (t ** 2).sum()
            return {keep}
        """,
    )


def test_exploding_grad(tmp_path: Path) -> None:
    events = run(Session.open(_gradient_jump(tmp_path, 1e4, value=True)), "i", repeat=12)
    assert warned(events) == {7 * 4: ("diverging",), 7 * 4 + 1: ("exploding-grad",)}
    text = message(events[29], "exploding-grad")
    assert text.startswith("t.grad has norm") and "median of its last 7" in text
    assert "clip_grad_norm_" in text and "above its best" in text


def test_a_gradient_spike_the_loss_does_not_feel_is_not_exploding(tmp_path: Path) -> None:
    # RMSprop's brief oscillations near a minimum (the tutorial's polynomial) look like this
    assert warned(run(Session.open(_gradient_jump(tmp_path, 1e4)), "i", repeat=12)) == {}


def test_vanishing_grad(tmp_path: Path) -> None:
    events = run(Session.open(_gradient_jump(tmp_path, 1e-5)), "i", repeat=12)
    event = only(events, "vanishing-grad")
    assert event.index == 7 * 4 + 1 and event.warnings[0].param == "t"


def test_grad_scale_thresholds_are_configurable(tmp_path: Path) -> None:
    path = _gradient_jump(tmp_path, 50.0)
    assert warned(run(Session.open(path), "i", repeat=12)) == {}
    config = (
        'optdbg_config = {"explode_factor": 10, "explode_rel": 1e-3, "explode_loss_rise": 0, '
        '"grad_warmup": 3, "grad_window": 4}'
    )
    source = path.read_text().replace("calls = [0]", f"calls = [0]\n{config}")
    path.write_text(source)
    events = run(Session.open(path), "i", repeat=12)
    assert only(events, "exploding-grad").index == 29
    assert "median of its last 4" in message(events[29], "exploding-grad")


# ----------------------------------------------------------------- non-finite values


def test_non_finite_loss_grad_and_param_once_each(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        import torch
        t = torch.tensor([10.0, 30.0], requires_grad=True)
        optimizer = torch.optim.SGD([t], lr=0.1)

        def forward():
            return torch.sqrt(t - 20).sum()
        """,
    )
    events = run(Session.open(path), "i", repeat=4)
    assert warned(events) == {0: ("non-finite",), 1: ("non-finite",), 2: ("non-finite",)}
    loss, grad, param = (events[k].warnings[0] for k in range(3))
    assert loss.param == "loss" and "the loss is nan" in loss.message
    assert "initial values" in loss.message and "sqrt" in loss.message
    assert grad.param == "t.grad" and "1 of 2 elements NaN" in grad.message
    assert param.param == "t" and "1 of 2 elements NaN" in param.message
    assert "t.grad, which is not finite" in param.message


def test_non_finite_param_from_an_overflowing_update() -> None:
    events = run(Session.open("quadratic_bowl_lr10"), "i", repeat=40)
    [step] = [e for e in events if e.op == "step" and e.warnings]
    assert step.index == 118
    assert message(step, "non-finite").startswith("t is not finite since the step at op 118")
    assert "the update overflowed" in message(step, "non-finite")


def test_measure_is_exact_about_finiteness() -> None:
    big = torch.full((1000,), 1e20)  # finite, but its float32 squares overflow
    norm, bad = measure(big)
    assert bad is None and norm == pytest.approx(1e20 * math.sqrt(1000), rel=1e-6)
    norm, bad = measure(torch.tensor([1.0, math.nan, math.inf, 2.0]))
    assert bad == "2 of 4 elements NaN and Inf"
    assert measure(torch.tensor([3.0, 4.0])) == (5.0, None)


# ----------------------------------------------------------------- the scheduler


def test_scheduler_stepped_while_loading(tmp_path: Path) -> None:
    path = bowl(
        tmp_path,
        0.1,
        "scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.5)\nscheduler.step()",
    )
    with pytest.warns(UserWarning, match="before `optimizer.step"):
        session = Session.open(path)
    assert [f.code for f in session.detectors.pending] == ["scheduler-order"]
    events = run(session, "i", repeat=3)
    assert only(events, "scheduler-order").index == 0


def test_scheduler_stepped_per_epoch_before_any_step(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        import torch
        t = torch.tensor([10.0, 10.0], requires_grad=True)
        optimizer = torch.optim.SGD([t], lr=0.1)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
        scheduler_every = "epoch"
        data = [torch.tensor(1.0), torch.tensor(2.0)]

        def forward(batch):
            return ((t - batch) ** 2).sum()
        """,
    )
    with pytest.warns(UserWarning, match="before `optimizer.step"):
        events = run(Session.open(path), "f f f f f")
    event = only(events, "scheduler-order")
    assert event.index == 2  # the forward that starts epoch 2 steps the scheduler
    assert "0.1 → 0.05" in message(event, "scheduler-order")
    assert warned(run(Session.open(path), "i", repeat=6)) == {}


# ----------------------------------------------------------------- configuration


def test_codes_can_be_silenced(tmp_path: Path) -> None:
    source = Path(Session.open("quadratic_bowl_lr10").scenario.path).read_text()
    path = write(
        tmp_path,
        source + '\noptdbg_config = {"silence": ["diverging", "non-finite", "exploding-grad"]}\n',
    )
    assert warned(run(Session.open(path), "i", repeat=40)) == {}
    path = bowl(tmp_path, 0.1, 'optdbg_config = {"silence": ["grad-accumulated"]}')
    assert warned(run(Session.open(path), "f b f b")) == {}  # the Session's own codes too


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ('{"plateau_patience": 0}', "plateau_patience must be a whole number >= 1"),
        ('{"plateau_rtol": "small"}', "plateau_rtol must be a number >= 0"),
        ('{"silence": ["plataeu"]}', "unknown code(s) 'plataeu'"),
        ('{"silence": 3}', "silence must be a list"),
        ('{"grad_window": 3}', "grad_warmup cannot exceed grad_window"),
    ],
)
def test_bad_config_is_a_scenario_error(tmp_path: Path, config: str, problem: str) -> None:
    path = bowl(tmp_path, 0.1, f"optdbg_config = {config}")
    with pytest.raises(ScenarioError) as info:
        Session.open(path)
    error = info.value
    assert error.file == str(path) and error.line == 4
    assert problem in error.problem and "optdbg_config" in error.problem
    assert error.fix and error.expected and error.source_line.startswith("optdbg_config")


def test_thresholds_defaults_and_overrides() -> None:
    assert Thresholds.from_config({}) == Thresholds()
    th = Thresholds.from_config({"plateau_rtol": 1e-6, "silence": "plateau", "other": 1})
    assert th.plateau_rtol == 1e-6 and th.silence == frozenset({"plateau"})
    assert Thresholds().plateau_patience == 50 and Thresholds().explode_factor == 100


# ----------------------------------------------------------------- diagnostics


def test_findings_grouped_by_code_with_explanations() -> None:
    session = Session.open("quadratic_bowl_lr10")
    run(session, "f b f b s s")
    run(session, "i", repeat=40)
    found = session.findings()
    assert [d.code for d in found] == [
        "grad-accumulated",
        "stale-grad",
        "diverging",
        "exploding-grad",
        "non-finite",
    ]
    for d in found:
        assert (d.meaning, d.fix) == EXPLANATIONS[d.code]
        assert d.count == len(d.occurrences) and d.first == d.occurrences[0][0]
    non_finite = found[-1]
    assert {f.param for _, f in non_finite.occurrences} == {"loss", "t", "t.grad"}
    assert diagnose(session.events) == found


def test_detector_memory_survives_a_history_round_trip() -> None:
    session = Session.open("quadratic_bowl_lr10")
    run(session, "i", repeat=5)
    state = session.detectors.history_state()
    run(session, "i", repeat=20)
    session.detectors.restore_history_state(state)
    assert session.detectors.history_state() == state


# ----------------------------------------------------------------- the CLI


def optdbg(*args: str) -> subprocess.CompletedProcess[str]:
    assert OPTDBG.exists(), f"the console script is not installed at {OPTDBG}"
    return subprocess.run(
        [str(OPTDBG), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )


def test_strict_exit_codes(tmp_path: Path) -> None:
    result = optdbg("run", "quadratic_bowl", "--ops", "f b f b", "--strict")
    assert result.returncode == 1, result.stderr
    assert "warning [grad-accumulated]" in result.stdout  # printed as usual
    result = optdbg("run", "quadratic_bowl", "--ops", "i", "--repeat", "30", "--strict")
    assert result.returncode == 0, result.stdout
    # 2 stays for load and argument errors
    path = bowl(tmp_path, 0.1, 'optdbg_config = {"silence": ["nope"]}')
    result = optdbg("run", str(path), "--strict")
    assert result.returncode == 2 and "unknown code(s) 'nope'" in result.stderr
    assert optdbg("run", "quadratic_bowl", "--ops", "q", "--strict").returncode == 2


def test_strict_is_documented_in_the_help() -> None:
    result = optdbg("run", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "--strict" in text and "status 1" in text


def _lr_odd_after(set_by_user: bool) -> list[int]:
    """quadratic_bowl with its lr cut 10000x after one iteration, then 25 iterations: the
    ops at which lr-schedule-odd fired."""
    session = Session.open("quadratic_bowl")
    session.perform("i")
    if set_by_user:
        event = session.set_hyper(0, "lr", 1e-5)
        assert event.op == "set" and event.ok
    else:  # what a schedule does: the group's lr changes with no set op
        session.optimizer.param_groups[0]["lr"] = 1e-5
    events = [e for _ in range(25) for e in session.perform("i")]
    return [e.index for e in events if "lr-schedule-odd" in e.codes()]


def test_the_detectors_observe_a_hyperparameter_set() -> None:
    """A set op reaches the detectors: the lr the user set is lr-schedule-odd's new
    reference (a deliberate 1e-5 is no schedule gone to zero), while the same lr reached
    without a set op (as a schedule would) is warned after lr_zero_patience steps."""
    assert _lr_odd_after(set_by_user=False) != []
    assert _lr_odd_after(set_by_user=True) == []


def test_a_set_lr_stays_the_reference_across_undo_and_redo() -> None:
    """Undo and redo replay the set through the detectors too: the same (silent) result."""
    session = Session.open("quadratic_bowl")
    session.perform("i")
    session.set_hyper(0, "lr", 1e-5)
    session.undo()
    session.redo()
    events = [e for _ in range(25) for e in session.perform("i")]
    assert not any("lr-schedule-odd" in e.codes() for e in events)


BIG_WEIGHT = """
import torch
torch.manual_seed(0)
W = torch.randn(2048, 1024, requires_grad=True)  # 2M values: sampled, and past the old copy limit
S = torch.rand(2048, 1024) ** 3  # each value's own scale: its updates vary 1000x
optimizer = torch.optim.SGD([W], lr=0.6)
optdbg_config = {"update_ratio_patience": 3}

def forward():
    return 0.5 * (S * W * W).sum()
"""


def test_update_ratio_on_a_big_weight_is_its_sampled_ratio(tmp_path: Path) -> None:
    """A weight of 2M values is measured on a fixed sample (engine.pitfalls.probes.SAMPLE):
    the ratio the warning shows is within 5% of the whole weight's |update| / |weight|,
    computed here by a plain loop (3.0% on this weight, whose scales vary by a cube); the
    weight, and torch's global random state, are those of the plain loop bit for bit (the
    sample draws from a generator of its own)."""
    session = Session.open(write(tmp_path, BIG_WEIGHT))
    events = run(session, "f b s z", 3)
    rng_after = torch.get_rng_state()
    event = only(events, "update-ratio")
    assert event.op == "step" and event.index == 10
    shown = float(message(event, "update-ratio").split("changed it by ")[1].split(" ")[0])

    torch.manual_seed(0)
    w = torch.randn(2048, 1024, requires_grad=True)
    s = torch.rand(2048, 1024) ** 3
    opt = torch.optim.SGD([w], lr=0.6)
    for _ in range(3):
        before = w.detach().clone()
        (0.5 * (s * w * w).sum()).backward()
        opt.step()
        opt.zero_grad()
        exact = float((w.detach() - before).norm() / before.norm())
    assert torch.equal(session.tracks[0].tensor.detach(), w.detach())
    assert torch.equal(rng_after, torch.get_rng_state())
    assert exact > 0.1 and math.isclose(shown, exact, rel_tol=0.05), (shown, exact)


def test_grad_accumulated_names_the_norm_a_big_gradient_added(tmp_path: Path) -> None:
    """For a `.grad` of more than 8 values, what the second backward added is its norm:
    the incoming gradient's, as the plain loop's second backward computes it."""
    path = write(
        tmp_path,
        """
        import torch
        W = torch.linspace(-1, 1, 16).reshape(4, 4).requires_grad_()
        X = torch.arange(16.0).reshape(4, 4)
        optimizer = torch.optim.SGD([W], lr=0.1)

        def forward():
            return (W * X).sin().sum()
        """,
    )
    events = run(Session.open(path), "f b f b")
    w = torch.linspace(-1, 1, 16).reshape(4, 4).requires_grad_()
    x = torch.arange(16.0).reshape(4, 4)
    (added,) = torch.autograd.grad((w * x).sin().sum(), w)
    assert f"this pass added a gradient of norm {float(added.norm()):.4g})" in message(
        only(events, "grad-accumulated"), "grad-accumulated"
    )


def test_nonfinite_all_names_what_measure_names() -> None:
    """A moved value's finiteness is read from its sum (a third of a norm's cost): finite
    only when every element is, and a sum that overflowed is looked at again, so the answer
    is `measure`'s, never a false alarm."""
    from optdbg.engine.norms import norms, shared_norms
    from optdbg.engine.pitfalls.measure import measure, nonfinite_all

    big = torch.finfo(torch.float32).max
    cases = [
        torch.randn(1000),
        torch.tensor([big, big, 1.0]),  # finite, but the sum overflows
        torch.tensor([1.0, math.nan, 2.0]),
        torch.tensor([math.inf, -math.inf, 0.0]),  # the sum is NaN
        torch.tensor([1.0, math.inf]),
        torch.randn(3, dtype=torch.complex64),
    ]
    expected = [measure(t)[1] for t in cases]
    assert nonfinite_all(cases) == expected
    assert expected[1] is None and expected[2] and expected[3] and expected[4]
    with shared_norms():  # a norm known already answers
        norms([cases[0]])
        assert nonfinite_all(cases[:1]) == [None]
