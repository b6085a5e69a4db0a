"""The Session's semantics, with exact numbers, on the bowl, dag_toy and friends."""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import pytest
import torch

from optdbg.engine import OPS, Session
from optdbg.engine.snapshot import SMALL, TensorView

sys.path.insert(0, str(Path(__file__).parent))

import itertools

from plain import PlainLoop


def f32(value: float) -> float:
    return torch.tensor(value, dtype=torch.float32).item()


def run(session: Session, words: str) -> list:
    events = []
    for word in words.split():
        events += session.perform(word)
    return events


def write(tmp_path: Path, text: str, name: str = "scenario.py") -> Path:
    path = tmp_path / name
    path.write_text(text.lstrip(), encoding="utf-8")
    return path


@pytest.fixture
def bowl() -> Session:
    return Session.open("quadratic_bowl")


def tensor(session: Session, name: str) -> torch.Tensor:
    return dict(session.scenario.params)[name]


# ----------------------------------------------------------------- the bowl, by the numbers


def test_fresh_session(bowl: Session) -> None:
    snap = bowl.snapshot()
    assert snap.loss is None and snap.op_count == 0 and snap.step_count == 0
    assert snap.next_op == "forward" and not snap.has_graph
    t = snap.param("t")
    assert t is not None
    assert t.value.values == [10.0, 10.0] and t.value.shape == (2,) and t.value.dtype == "float32"
    assert t.grad is None and t.accumulated == 0 and t.last_update is None
    assert snap.optimizer == "SGD" and snap.lrs == (0.1,)
    assert bowl.graph() is None


def test_forward_backward_step_numbers(bowl: Session) -> None:
    [f] = bowl.perform("f")
    assert f.ok and f.op == "forward" and f.index == 0
    assert f.loss == 201.0 and f.summary == "loss = 201"
    assert bowl.snapshot().param("t").grad is None

    [b] = bowl.perform("b")
    assert b.ok and b.warnings == () and b.loss == 201.0
    t = bowl.snapshot().param("t")
    assert t.grad.values == [14.0, 24.0] and t.accumulated == 1
    assert t.value.values == [10.0, 10.0]

    [s] = bowl.perform("s")
    assert s.ok and s.warnings == ()
    snap = bowl.snapshot()
    t = snap.param("t")
    assert t.value.values == [f32(8.6), f32(7.6)] == [8.600000381469727, 7.599999904632568]
    assert t.grad.values == [14.0, 24.0]  # step does not clear grads
    expected_delta = (torch.tensor([f32(8.6), f32(7.6)]) - torch.tensor([10.0, 10.0])).tolist()
    assert t.last_update.values == expected_delta
    assert snap.step_count == 1 and snap.op_count == 3 and snap.loss == 201.0

    detail = bowl.update_detail("t")
    assert detail is not None
    assert detail.optimizer == "SGD" and detail.hyper["lr"] == 0.1
    assert detail.before.values == [10.0, 10.0]
    assert detail.grad.values == [14.0, 24.0]
    assert detail.after.values == [f32(8.6), f32(7.6)]
    assert detail.delta.values == expected_delta
    assert detail.state_before == {} and detail.state_after == {}

    [z] = bowl.perform("z")
    t = bowl.snapshot().param("t")
    assert z.ok and t.grad is None and t.accumulated == 0
    assert t.last_update.values == expected_delta  # the last step is still the last step


def test_second_step_losses(bowl: Session) -> None:
    events = run(bowl, "i i f")
    assert [e.op for e in events] == [*OPS, *OPS, "forward"]
    assert events[0].loss == 201.0
    loop = PlainLoop.load("quadratic_bowl")
    loop.ops("i i f")
    assert events[-1].loss == loop.loss.item()
    assert events[-1].loss == pytest.approx(87.0528, abs=1e-3)


def test_accumulated_counter_and_warning(bowl: Session) -> None:
    events = run(bowl, "f b")
    assert events[1].warnings == ()
    assert bowl.snapshot().param("t").accumulated == 1

    events = run(bowl, "f b")
    [warning] = events[1].warnings
    assert warning.code == "grad-accumulated" and warning.param == "t"
    assert "2 backward passes" in warning.message and "zero_grad" in warning.message
    assert events[1].codes() == ("grad-accumulated",)
    t = bowl.snapshot().param("t")
    assert t.grad.values == [28.0, 48.0] and t.accumulated == 2

    [b3] = run(bowl, "f b")[1:]
    assert "3 backward passes" in b3.warnings[0].message
    assert bowl.snapshot().param("t").accumulated == 3

    events = run(bowl, "z f b")
    assert all(e.warnings == () for e in events)
    t = bowl.snapshot().param("t")
    assert t.grad.values == [14.0, 24.0] and t.accumulated == 1


def test_only_the_second_backward_warns(bowl: Session) -> None:
    events = run(bowl, "f b s z f b s z f b f b")
    warned = [e.index for e in events if e.warnings]
    assert warned == [11]


def test_grad_is_none_after_zero_grad_and_zeros_when_the_optimizer_keeps_them(
    tmp_path: Path,
) -> None:
    session = Session.open("quadratic_bowl")
    run(session, "f b z")
    assert tensor(session, "t").grad is None
    assert session.snapshot().param("t").grad is None
    assert session.perform("z")[0].summary == "grads cleared (set to None)"

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
    return (t[0] - 3) ** 2 + (t[1] + 2) ** 2 + 8
""",
    )
    zeros = Session.open(path)
    [z] = run(zeros, "f b s z")[3:]
    assert z.summary == "grads set to zero"
    t = zeros.snapshot().param("t")
    assert t.grad is not None and t.grad.values == [0.0, 0.0] and t.accumulated == 0
    events = run(zeros, "f b")
    assert events[1].warnings == ()  # adding into zeros is not an accumulation
    assert zeros.snapshot().param("t").accumulated == 1
    # the last step's grad was kept, though zero_grad zeroed that very tensor in place
    assert zeros.update_detail("t").grad.values == [14.0, 24.0]


# ----------------------------------------------------------------- dag_toy


def test_dag_toy_maximizes() -> None:
    session = Session.open("dag_toy")
    assert [n for n, _ in session.scenario.params] == ["b"]
    events = run(session, "f b s")
    assert events[0].loss == 3.0
    b = session.snapshot().param("b")
    assert b.grad.values == -2.0 and b.value.values == f32(3.8)
    assert b.grad.shape == ()
    assert (
        session.update_detail("b").delta.values
        == (torch.tensor(f32(3.8)) - torch.tensor(4.0)).item()
    )


def test_dag_toy_accumulates_to_minus_four() -> None:
    session = Session.open("dag_toy")
    events = run(session, "f b f b")
    assert [e.warnings != () for e in events] == [False, False, False, True]
    assert "2 backward passes" in events[3].warnings[0].message
    b = session.snapshot().param("b")
    assert b.grad.values == -4.0 and b.accumulated == 2


# ----------------------------------------------------------------- errors


def test_backward_twice_through_a_freed_graph_is_recorded() -> None:
    session = Session.open("mlp_sequential")
    run(session, "f b")
    before = {n: p.grad.clone() for n, p in session.scenario.params}
    values = {n: p.detach().clone() for n, p in session.scenario.params}
    snap_before = session.snapshot()

    [event] = session.perform("b")
    assert not event.ok and event.op == "backward"
    assert event.error.type == "RuntimeError"
    assert "backward through the graph a second time" in event.error.message
    assert "forward" in event.error.explanation
    assert event.summary.startswith("RuntimeError: ")
    assert event.codes() == ("backward-twice",)  # the pitfall detector names the mistake
    for n, p in session.scenario.params:
        assert torch.equal(p.grad, before[n]) and torch.equal(p, values[n])
    snap = session.snapshot()
    assert snap.next_op == "step"  # the cycle goes on from the last op that worked
    assert [p.accumulated for p in snap.params] == [p.accumulated for p in snap_before.params]
    assert session.events[-1] is event and len(session.events) == 3

    events = run(session, "f b")
    assert all(e.ok for e in events)
    for n, p in session.scenario.params:
        assert torch.equal(p.grad, 2 * before[n])
    assert {w.param for w in events[1].warnings} == {n for n, _ in session.scenario.params}


def test_backward_before_forward_is_a_usage_error(bowl: Session) -> None:
    [event] = bowl.perform("b")
    assert event.error is not None and event.error.type == "UsageError"
    assert "forward" in event.error.message
    assert event.loss is None
    snap = bowl.snapshot()
    assert snap.next_op == "forward" and snap.param("t").grad is None
    assert run(bowl, "f b")[1].ok


def test_step_and_zero_grad_before_anything(bowl: Session) -> None:
    events = run(bowl, "s z")
    assert all(e.ok for e in events)
    assert events[0].summary == "no parameter has a gradient: nothing moved"
    assert bowl.snapshot().param("t").value.values == [10.0, 10.0]
    assert bowl.update_detail("t") is None


def test_unknown_word_raises(bowl: Session) -> None:
    with pytest.raises(ValueError, match="unknown op"):
        bowl.perform("x")
    assert bowl.events == []


def test_stale_graph_after_step(tmp_path: Path) -> None:
    session = Session.open("mlp_sequential")
    events = run(session, "f b f s b")
    assert events[-1].error.type == "RuntimeError"
    assert "modified by an inplace operation" in events[-1].error.message
    assert "step" in events[-1].error.explanation


def test_non_scalar_loss_and_non_tensor_loss(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
import torch
w = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)

def forward():
    return w * 2
""",
    )
    session = Session.open(path)
    f, b = run(session, "f b")
    assert f.ok and f.loss is None and f.codes() == ("loss-not-scalar",)
    assert b.error.type == "RuntimeError" and "scalar" in b.error.message
    assert tensor(session, "w").grad is None

    path = write(
        tmp_path,
        """
import torch
w = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)

def forward():
    return 3.0
""",
        name="number.py",
    )
    session = Session.open(path)
    [f] = session.perform("f")
    assert f.error.type == "TypeError" and "float" in f.error.message
    assert f"{path}:5" in f.error.explanation  # the line of `def forward`


def test_forward_that_raises_names_the_line_and_stops_the_iteration(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
import torch
w = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)

def forward():
    return w.sum() / 0 + {}["missing"]
""",
    )
    session = Session.open(path)
    events = session.iteration()
    assert isinstance(events, tuple) and len(events) == 1
    [f] = events
    assert f.error.type == "KeyError"
    assert f"{path}:6" in f.error.explanation
    assert session.next_op == "forward"


# ----------------------------------------------------------------- immutability


def test_events_and_snapshots_are_frozen(bowl: Session) -> None:
    events = run(bowl, "f b f b b")
    snap = bowl.snapshot()
    with pytest.raises(dataclasses.FrozenInstanceError):
        events[0].loss = 0.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        events[3].warnings[0].message = ""  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        events[4].error.type = ""  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.loss = 0.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.params[0].grad = None  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.params[0].value.values = []  # type: ignore[misc]
    assert isinstance(events, list) and isinstance(snap.params, tuple)
    assert isinstance(events[3].warnings, tuple)


def test_snapshots_are_detached(bowl: Session) -> None:
    run(bowl, "f b s f b")
    snap = bowl.snapshot()
    detail = bowl.update_detail("t")
    t = tensor(bowl, "t")
    grad = t.grad.tolist()
    second = 2 * (t.detach() - torch.tensor([3.0, -2.0]))  # the gradient at t = (8.6, 7.6)
    assert grad == (torch.tensor([14.0, 24.0]) + second).tolist()
    with torch.no_grad():
        t.add_(100.0)
        t.grad.mul_(10.0)
    assert snap.param("t").value.values == [f32(8.6), f32(7.6)]
    assert snap.param("t").grad.values == grad
    assert detail.after.values == [f32(8.6), f32(7.6)]
    assert detail.before.values == [10.0, 10.0]
    assert detail.grad.values == [14.0, 24.0]  # the grad the step used, not today's
    assert bowl.snapshot().param("t").grad.values == (10 * torch.tensor(grad)).tolist()
    assert bowl.update_detail("t").before.values == [10.0, 10.0]


def test_snapshot_holds_no_live_tensors() -> None:
    session = Session.open("classifier_adam")
    run(session, "f b s f b")
    snap = session.snapshot()

    def no_tensors(value: object) -> None:
        assert not isinstance(value, torch.Tensor)
        if isinstance(value, TensorView):
            no_tensors(value.values)
        elif isinstance(value, list | tuple):
            for v in value:
                no_tensors(v)
        elif isinstance(value, dict):
            for v in value.values():
                no_tensors(v)
        elif dataclasses.is_dataclass(value):
            for f in dataclasses.fields(value):
                no_tensors(getattr(value, f.name))

    no_tensors(snap)
    no_tensors(session.events)
    no_tensors(session.update_detail("model.0.weight"))


# ----------------------------------------------------------------- the cycle


def test_next_cycles(bowl: Session) -> None:
    ops = []
    for _ in range(9):
        assert bowl.next_op == OPS[len(ops) % 4]
        ops.append(bowl.next().op)
    assert ops == [*OPS, *OPS, "forward"]
    assert all(e.ok for e in bowl.events)
    assert bowl.snapshot().next_op == "backward"
    assert [e.op for e in run(bowl, "n n")] == ["backward", "step"]


def test_iteration_returns_four_events(bowl: Session) -> None:
    events = bowl.iteration()
    assert isinstance(events, tuple)
    assert [e.op for e in events] == list(OPS)
    assert [e.index for e in events] == [0, 1, 2, 3]
    assert all(e.ok for e in events)
    listed = bowl.perform("iteration")
    assert [e.op for e in listed] == list(OPS) and listed[0].index == 4
    assert bowl.snapshot().step_count == 2 and bowl.snapshot().iteration == 2


def test_long_words(bowl: Session) -> None:
    ops = [e.op for e in run(bowl, "forward backward step zero_grad next")]
    assert ops == [*OPS, "forward"]


# ----------------------------------------------------------------- data, epochs, schedules


def test_epoch_and_batch_counters() -> None:
    session = Session.open("linear_regression_minibatch")
    snap = session.snapshot()
    assert snap.has_data and snap.batches_per_epoch == 100
    assert (snap.epoch, snap.batch) == (0, 0)
    session.perform("f")
    assert (session.snapshot().epoch, session.snapshot().batch) == (1, 1)
    assert session.events[0].summary.endswith("(epoch 1, batch 1)")
    for _ in range(99):
        session.perform("f")
    assert (session.snapshot().epoch, session.snapshot().batch) == (1, 100)
    session.perform("f")
    assert (session.snapshot().epoch, session.snapshot().batch) == (2, 1)
    assert session.snapshot().iteration == 101


def test_no_data_means_no_epochs(bowl: Session) -> None:
    run(bowl, "i i")
    snap = bowl.snapshot()
    assert not snap.has_data and snap.batches_per_epoch is None
    assert (snap.epoch, snap.batch) == (0, 0)


def test_scheduler_decays_lr_per_step() -> None:
    session = Session.open("lr_schedule")
    loop = PlainLoop.load("lr_schedule")
    lrs = [session.snapshot().lrs[0]]
    assert lrs == [0.1]
    for _ in range(6):
        session.perform("i")
        loop.ops("i")
        lrs.append(session.snapshot().lrs[0])
        assert lrs[-1] == loop.optimizer.param_groups[0]["lr"]
    assert lrs == pytest.approx([0.1 * 0.9**k for k in range(7)], rel=1e-12)
    assert all(a > b for a, b in itertools.pairwise(lrs))
    # only steps move it: forward, backward and zero_grad leave it alone
    run(session, "f b z")
    assert session.snapshot().lrs[0] == lrs[-1]
    # the step used the lr before the decay
    session.perform("i")
    assert session.update_detail("t").hyper["lr"] == lrs[-1]


def test_adam_update_detail() -> None:
    session = Session.open("classifier_adam")
    run(session, "f b s")
    optimizer = session.optimizer
    for name, p in session.scenario.params:
        detail = session.update_detail(name)
        assert detail is not None and detail.optimizer == "Adam"
        assert detail.hyper["lr"] == 0.01 and detail.hyper["betas"] == (0.9, 0.999)
        assert detail.state_before == {}  # Adam creates its state at the first step
        assert {"exp_avg", "exp_avg_sq", "step"} <= detail.state_after.keys()
        state = optimizer.state[p]
        assert detail.state_after["step"].values == state["step"].item() == 1.0
        assert detail.state_after["exp_avg"].values == state["exp_avg"].tolist()
        assert detail.state_after["exp_avg_sq"].values == state["exp_avg_sq"].tolist()
        assert detail.after.values == p.tolist()
        assert detail.grad.values == p.grad.tolist()
        before = torch.tensor(detail.before.values)
        assert detail.delta.values == (p.detach() - before).tolist()
        # the snapshot shows the same state
        snap_state = session.snapshot().param(name).state
        assert snap_state["exp_avg"].values == state["exp_avg"].tolist()

    run(session, "z f b s")
    detail = session.update_detail("model.2.bias")
    assert detail.state_before["step"].values == 1.0
    assert detail.state_after["step"].values == 2.0
    assert session.update_detail("nonexistent") is None


# ----------------------------------------------------------------- big tensors


def test_large_tensors_are_summarized(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
import torch
big = torch.randn(10, 10, requires_grad=True)
edge = torch.randn(8, 8, requires_grad=True)
optimizer = torch.optim.SGD([big, edge], lr=0.1)

def forward():
    return (big ** 2).sum() + (edge ** 3).sum()
""",
    )
    session = Session.open(path)
    run(session, "f b")
    snap = session.snapshot()
    big, edge = tensor(session, "big"), tensor(session, "edge")
    assert SMALL == 64

    small = snap.param("edge")
    assert small.value.is_small and small.value.values == edge.tolist()
    assert small.grad.values == edge.grad.tolist()

    for view, t in ((snap.param("big").value, big), (snap.param("big").grad, big.grad)):
        assert not view.is_small and view.values is None
        assert view.shape == (10, 10) and view.numel == 100
        s = view.summary
        assert s.mean == t.mean().item()
        assert s.std == t.std().item()
        assert s.min == t.min().item()
        assert s.max == t.max().item()
        assert s.norm == t.norm().item()
        assert view.to_json() == {
            "shape": [10, 10],
            "mean": s.mean,
            "std": s.std,
            "min": s.min,
            "max": s.max,
            "norm": s.norm,
        }
        assert all(math.isfinite(x) for x in (s.mean, s.std, s.min, s.max, s.norm))
