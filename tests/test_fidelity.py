"""Observing must not change results: the Session against a plain PyTorch loop, bit for bit.

For every built-in scenario and many op sequences, right and wrong orders alike, the
Session runs on one copy of the scenario and the reference loop of tests/plain.py on an
independently loaded copy, performing the same PyTorch calls. After every op word the
two must hold bit-identical parameters, grads (None vs tensor), optimizer state,
hyperparameters (the lr under a scheduler) and loss. An op that the Session records as
an error must fail in the plain loop too, with the same exception type, and leave the
state as it was.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optdbg.engine import OPS, WORDS, Session, builtin_names

sys.path.insert(0, str(Path(__file__).parent))

from plain import PlainLoop

# ----------------------------------------------------------------- the reference


class Reference:
    """tests/plain.py's loop, with the Session's meaning of `next` and `iteration`.

    n: the next op of forward -> backward -> step -> zero_grad after the last op that
       succeeded (forward at the start);
    i: forward, backward, step, zero_grad, stopping at the first op that fails.
    An op that fails leaves the state as it was (grads restored), as the Session promises.
    """

    def __init__(self, name: str) -> None:
        self.loop = PlainLoop.load(name)
        self.next = 0
        words = self.loop.ns.get("optdbg_config", {}).get("iteration")
        self.pattern = [WORDS[w] for w in words.split()] if words else list(OPS)
        """The ops of one iteration: optdbg_config["iteration"], else f b s z."""

    @property
    def optimizer(self) -> torch.optim.Optimizer | None:
        return self.loop.optimizer

    @property
    def loss(self) -> torch.Tensor | None:
        return self.loop.loss

    def _params(self) -> list[torch.Tensor]:
        return self.loop.params()

    def do(self, op: str) -> str | None:
        """Perform one of OPS; the exception type's name when it fails, else None."""
        if op == "backward" and self.loop.loss is None:
            return "UsageError"  # the Session refuses it before calling PyTorch
        grads = [None if p.grad is None else p.grad.detach().clone() for p in self._params()]
        try:
            getattr(self.loop, op)()
        except Exception as e:
            for p, g in zip(self._params(), grads, strict=True):
                p.grad = g
            return type(e).__name__
        if self.pattern[self.next] == op:  # the expected op: the pattern goes on
            self.next = (self.next + 1) % len(self.pattern)
        else:  # another op: the pattern resumes after that op's first place in it
            self.next = (self.pattern.index(op) + 1) % len(self.pattern)
        return None

    def perform(self, word: str) -> list[tuple[str, str | None]]:
        op = WORDS[word]
        if op == "next":
            op = self.pattern[self.next]
        if op != "iteration":
            return [(op, self.do(op))]
        done = []
        for op in self.pattern:
            error = self.do(op)
            done.append((op, error))
            if error is not None:
                break
        return done


# ----------------------------------------------------------------- captured state


@dataclass
class State:
    params: list[torch.Tensor]
    grads: list[torch.Tensor | None]
    opt_state: list[dict[str, Any]]
    hyper: list[dict[str, Any]]
    loss: torch.Tensor | None


def _copy(value: Any) -> Any:
    return value.detach().clone() if isinstance(value, torch.Tensor) else value


def capture(
    optimizer: torch.optim.Optimizer | None,
    loss: torch.Tensor | None,
    params: list[torch.Tensor] | None = None,
) -> State:
    """The state; without an optimizer (the manual form), that of `params`."""
    groups = optimizer.param_groups if optimizer is not None else []
    if params is None:
        params = [p for g in groups for p in g["params"]]
    state = optimizer.state if optimizer is not None else {}
    return State(
        params=[p.detach().clone() for p in params],
        grads=[None if p.grad is None else p.grad.detach().clone() for p in params],
        opt_state=[{k: _copy(v) for k, v in state.get(p, {}).items()} for p in params],
        hyper=[{k: _copy(v) for k, v in g.items() if k != "params"} for g in groups],
        loss=None if loss is None else loss.detach().clone(),
    )


def session_capture(session: Session) -> State:
    if session.scenario.is_manual:  # the scenario's own step(): no optimizer state
        return capture(None, session.loss, [t.tensor for t in session.tracks])
    return capture(session.optimizer, session.loss)


def bits(t: torch.Tensor) -> torch.Tensor:
    """The raw bytes of a tensor: equal bits, NaNs included, compare equal."""
    return t.detach().contiguous().reshape(-1).view(torch.uint8)


def same_tensor(a: torch.Tensor, b: torch.Tensor) -> bool:
    return (
        a.shape == b.shape
        and a.dtype == b.dtype
        and a.requires_grad == b.requires_grad
        and torch.equal(bits(a), bits(b))
    )


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and same_tensor(a, b)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return bool(type(a) is type(b) and a == b)


def assert_same(got: State, want: State, where: str) -> None:
    assert len(got.params) == len(want.params), where
    for i, (a, b) in enumerate(zip(got.params, want.params, strict=True)):
        assert same_tensor(a, b), f"{where}: param {i} differs\n{a}\n{b}"
    for i, (a, b) in enumerate(zip(got.grads, want.grads, strict=True)):
        assert (a is None) == (b is None), f"{where}: grad {i} is {a} in one, {b} in the other"
        if a is not None and b is not None:
            assert same_tensor(a, b), f"{where}: grad {i} differs\n{a}\n{b}"
    for i, (a, b) in enumerate(zip(got.opt_state, want.opt_state, strict=True)):
        assert a.keys() == b.keys(), f"{where}: optimizer state keys of param {i}"
        for key in a:
            assert same_value(a[key], b[key]), f"{where}: state[{key}] of param {i} differs"
    for i, (a, b) in enumerate(zip(got.hyper, want.hyper, strict=True)):
        assert a.keys() == b.keys(), f"{where}: hyperparameter keys of group {i}"
        for key in a:
            assert same_value(a[key], b[key]), f"{where}: group {i} {key}: {a[key]} != {b[key]}"
    assert (got.loss is None) == (want.loss is None), f"{where}: loss {got.loss} vs {want.loss}"
    if got.loss is not None and want.loss is not None:
        assert same_tensor(got.loss, want.loss), f"{where}: loss {got.loss} != {want.loss}"


def same_float(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return (math.isnan(a) and math.isnan(b)) or a == b


# ----------------------------------------------------------------- running both


def observe(session: Session) -> None:
    """Everything the UI and the CLI ask for after an op."""
    snap = session.snapshot()
    for p in snap.params:
        session.update_detail(p.name)
    session.graph()


def run_session(name: str, words: list[str], watch: bool = False) -> tuple[list, list[State]]:
    """Perform `words`; per word, the events as (op, error type) and the state after it."""
    session = Session.open(name)
    if watch:
        observe(session)
    done, states = [], []
    for word in words:
        events = session.perform(word)
        if watch:
            observe(session)
        done.append([(e.op, e.error.type if e.error else None) for e in events])
        forwards = [k for k, e in enumerate(events) if e.op == "forward"]
        for e in events[forwards[-1] if forwards else 0 :]:  # those after the latest loss
            want = None if session.loss is None else session.loss.detach().item()
            assert same_float(e.loss, session.loss_value)
            assert same_float(session.loss_value, want), (session.loss_value, want)
        states.append(session_capture(session))
    return done, states


def run_reference(name: str, words: list[str]) -> tuple[list, list[State]]:
    ref = Reference(name)
    done, states = [], []
    for word in words:
        done.append(ref.perform(word))
        states.append(capture(ref.optimizer, ref.loss, ref.loop.params()))
    return done, states


def check(name: str, words: list[str], watch: bool = False) -> None:
    got_ops, got_states = run_session(name, words, watch=watch)
    want_ops, want_states = run_reference(name, words)
    for k, word in enumerate(words):
        where = f"{name}, after op word {k} ({word!r}) of {' '.join(words)!r}"
        assert got_ops[k] == want_ops[k], f"{where}: session {got_ops[k]}, plain {want_ops[k]}"
        assert_same(got_states[k], want_states[k], where)


# ----------------------------------------------------------------- the sequences

SEQUENCES = {
    "fbsz x3": "f b s z " * 3,
    "zfbs x3": "z f b s " * 3,
    "f b f b s": "f b f b s",
    "f b b": "f b b",
    "f b s b": "f b s b",
    "f s": "f s",
    "s z b": "s z b",
    "b": "b",
    "f b s s z f b s": "f b s s z f b s",
    "i i n n n": "i i n n n",
    "i x6": "i " * 6,
    "n x9": "n " * 9,
    "f f b s": "f f b s",
    "f b f s b": "f b f s b",  # backward through a graph made stale by step
    "f b z b s": "f b z b s",
    "f b b n n i": "f b b n n i",  # next after a failed op
    "long names": "forward backward step zero_grad next iteration",
}

BUILTINS = builtin_names()


def test_every_builtin_is_covered() -> None:
    expected = {
        "classifier_adam",
        "dag_toy",
        "linear_regression",
        "linear_regression_minibatch",
        "log_xy",
        "lr_schedule",
        "mlp_sequential",
        "polynomial_sin",
        "quadratic_bowl",
        "quadratic_bowl_lr025",
        "quadratic_bowl_lr10",
    }
    assert expected <= set(BUILTINS)


@pytest.mark.parametrize("sequence", list(SEQUENCES), ids=list(SEQUENCES))
@pytest.mark.parametrize("name", BUILTINS)
def test_session_equals_plain_loop(name: str, sequence: str) -> None:
    check(name, SEQUENCES[sequence].split())


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("quadratic_bowl_lr10", "i " * 40),  # overflows to inf, then nan: compared bitwise
        ("lr_schedule", "i " * 25),  # the lr decays at every step
        ("linear_regression_minibatch", "i " * 105),  # into the second epoch
        ("classifier_adam", "i " * 12 + "f b f b s"),  # Adam state over an epoch boundary
        ("dag_toy", "f b s " * 10),  # the forgotten zero_grad
    ],
    ids=["lr10-diverges", "lr-decay", "two-epochs", "adam-epochs", "no-zero-grad"],
)
def test_long_runs_equal_plain_loop(name: str, words: str) -> None:
    check(name, words.split())


def test_an_error_leaves_the_state_unchanged() -> None:
    """The reference itself: PyTorch refusing `f b b` on mlp_sequential changes nothing."""
    ref = Reference("mlp_sequential")
    ref.perform("f")
    ref.perform("b")
    before = capture(ref.optimizer, ref.loss)
    assert ref.perform("b") == [("backward", "RuntimeError")]
    assert_same(capture(ref.optimizer, ref.loss), before, "after the refused backward")
    assert ref.perform("n") == [("step", None)]


# ----------------------------------------------------------------- custom scenarios

CUSTOM = {
    # loss = a + b where b's branch runs first in backward: when step has modified p in
    # place, backward fails at PowBackward0 only after q's gradient was accumulated.
    "partial_backward.py": """
import torch
p = torch.tensor([1.0, 2.0], requires_grad=True)
q = torch.tensor([3.0, 4.0], requires_grad=True)
optimizer = torch.optim.SGD([p, q], lr=0.1)

def forward():
    a = (p ** 2).sum()
    b = (q * 3).sum()
    return a + b
""",
    # two param groups, momentum and weight decay, a per-epoch scheduler and forward(batch)
    "groups_epoch.py": """
import torch
w = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)
v = torch.tensor([[0.3, 0.1], [0.2, -0.4]], requires_grad=True)
data = [
    torch.tensor([1.0, 2.0, 3.0]),
    torch.tensor([-1.0, 0.5, 2.0]),
    torch.tensor([0.0, 1.0, 1.0]),
]
optimizer = torch.optim.SGD(
    [{"params": [w]}, {"params": [v], "lr": 0.05, "weight_decay": 0.1}], lr=0.1, momentum=0.9
)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
scheduler_every = "epoch"

def forward(batch):
    return ((w * batch).sum() - 1) ** 2 + (v @ v).pow(2).sum()
""",
    # an optimizer whose zero_grad keeps zero tensors (set_to_none=False)
    "zero_grads.py": """
import torch
t = torch.tensor([10.0, 10.0], requires_grad=True)

class SGDZeros(torch.optim.SGD):
    def zero_grad(self, set_to_none=False):
        super().zero_grad(set_to_none=set_to_none)

optimizer = SGDZeros([t], lr=0.1)

def forward():
    return (t[0] - 3) ** 2 + (t[1] + 2) ** 2 + 8
""",
}


@pytest.fixture(scope="module")
def custom_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("custom")
    for file, text in CUSTOM.items():
        (folder / file).write_text(text.lstrip(), encoding="utf-8")
    return folder


@pytest.mark.parametrize("sequence", list(SEQUENCES), ids=list(SEQUENCES))
@pytest.mark.parametrize("file", list(CUSTOM))
def test_custom_scenario_equals_plain_loop(custom_dir: Path, file: str, sequence: str) -> None:
    check(str(custom_dir / file), SEQUENCES[sequence].split())


def test_failed_backward_on_a_stale_graph_rolls_back_partial_grads(custom_dir: Path) -> None:
    """PyTorch accumulated q.grad before refusing the stale graph; the Session undoes it."""
    session = Session.open(custom_dir / "partial_backward.py")
    for word in ["f", "b", "f", "s"]:
        session.perform(word)
    q = dict(session.scenario.params)["q"]
    before = q.grad.clone()
    [event] = session.perform("b")
    assert event.error is not None and event.error.type == "RuntimeError"
    assert "modified by an inplace operation" in event.error.message
    assert torch.equal(q.grad, before)
    assert session.snapshot().param("q").accumulated == 1


# ----------------------------------------------------------------- observing


OBSERVED = list("fbsfbbszinnnfsbznfbfsbi")  # one letter per op word


@pytest.mark.parametrize("name", BUILTINS)
def test_observing_after_every_op_changes_nothing(name: str) -> None:
    watched_ops, watched = run_session(name, OBSERVED, watch=True)
    blind_ops, blind = run_session(name, OBSERVED, watch=False)
    assert watched_ops == blind_ops
    for k, word in enumerate(OBSERVED):
        assert_same(watched[k], blind[k], f"{name}: observed vs not, after op word {k} ({word})")
    want_ops, want = run_reference(name, OBSERVED)
    assert watched_ops == want_ops
    for k in range(len(OBSERVED)):
        assert_same(watched[k], want[k], f"{name}: observed vs plain, after op word {k}")


@pytest.mark.parametrize("name", ["quadratic_bowl", "mlp_sequential", "classifier_adam"])
def test_observed_events_equal_unobserved_events(name: str) -> None:
    """Same summaries, losses, warnings and errors whether or not anyone looks."""

    def events(watch: bool) -> list[tuple]:
        session = Session.open(name)
        for word in OBSERVED:
            session.perform(word)
            if watch:
                observe(session)
        return [(e.index, e.op, e.summary, e.loss, e.warnings, e.error) for e in session.events]

    assert events(True) == events(False)


# ----------------------------------------------------------------- random sequences


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(
    name=st.sampled_from(["quadratic_bowl", "dag_toy", "mlp_sequential", "classifier_adam"]),
    words=st.lists(st.sampled_from(list("fbszni")), max_size=12),
    watch=st.booleans(),
)
def test_random_sequences_equal_plain_loop(name: str, words: list[str], watch: bool) -> None:
    check(name, words, watch=watch)
