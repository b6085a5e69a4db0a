"""Time travel: undo, redo and goto restore states bit-identical to a plain PyTorch loop.

The equivalent of a sequence with undo/redo/goto is the sequence with the undone ops
removed: a model of the timeline (applied ops, redoable ops) is kept here, independently of
the engine, and the plain loop of tests/plain.py performs the applied ops on an
independently loaded copy of the scenario. The two must then hold bit-identical
parameters, grads (None vs tensor), optimizer and scheduler state, hyperparameters, loss,
module buffers, other leaf tensors and their grads, epoch/batch counters and random number
generator states; and they must keep agreeing over a few more ops (backward through the
restored graph, the next batch, the random numbers a forward draws).
"""

from __future__ import annotations

import math
import random
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optdbg.engine import OPS, ScenarioError, Session, builtin_names
from optdbg.engine.hyper import HyperError

sys.path.insert(0, str(Path(__file__).parent))

import itertools

from plain import PlainLoop, scenario_path

ROOT = Path(__file__).parents[1]


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Any:
    """Small tensors: one intra-op thread is faster, and much faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------- scenarios drawing random numbers

CUSTOM = {
    # a shuffled DataLoader without a generator (global RNG), randn/dropout/random/numpy in
    # forward, a tensor outside the optimizer, a scalar global changed by forward, momentum and
    # a per-step scheduler; 5 batches per epoch
    "rng_everywhere.py": '''
"""Random numbers everywhere: global-RNG shuffling, noise, dropout, random, numpy."""
import random

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

X = torch.randn(40, 3)
y = torch.randn(40)
data = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True)
w = torch.zeros(3, requires_grad=True)
b = torch.zeros(1, requires_grad=True)
outside = torch.ones(1, requires_grad=True)
optimizer = torch.optim.SGD([w, b], lr=0.05, momentum=0.9)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)
calls = 0

def forward(batch):
    global calls
    calls += 1
    xb, yb = batch
    noise = torch.randn(xb.shape[0]) * 0.1
    dropped = torch.nn.functional.dropout(xb, p=0.2, training=True)
    scale = random.uniform(0.9, 1.1) * float(np.random.uniform(0.9, 1.1)) * (1 + calls % 3)
    return ((dropped @ w + b - yb + noise) ** 2).mean() * scale * outside
''',
    # BatchNorm buffers, dropout, Adam, a DataLoader with its own generator, a generator
    # of the scenario, a per-epoch scheduler; 30 rows in batches of 7 (the last one has 2)
    "batchnorm_adam.py": '''
"""BatchNorm and dropout with Adam, shuffled by the loader's own generator."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

g = torch.Generator().manual_seed(1)
X = torch.randn(30, 4, generator=g)
y = torch.randint(0, 3, (30,), generator=g)
data = DataLoader(
    TensorDataset(X, y), batch_size=7, shuffle=True, generator=torch.Generator().manual_seed(5)
)
model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.3),
                      nn.Linear(8, 3))
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
scheduler_every = "epoch"
''',
    # a NumPy Generator and a random.Random held by the scenario, no data
    "own_generators.py": '''
"""The scenario's own NumPy and Python generators feed forward."""
import random

import numpy as np
import torch

rng = np.random.default_rng(3)
pyrng = random.Random(4)
t = torch.tensor([1.0, -1.0], requires_grad=True)
optimizer = torch.optim.RMSprop([t], lr=0.01)

def forward():
    shift = torch.tensor(rng.normal(size=2), dtype=torch.float32)
    return ((t - shift) ** 2).sum() * pyrng.uniform(0.5, 1.5)
''',
}


@pytest.fixture(scope="module")
def custom_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("history")
    for file, text in CUSTOM.items():
        (folder / file).write_text(text.lstrip(), encoding="utf-8")
    return folder


BUILTINS = builtin_names()

# ----------------------------------------------------------------- the reference


def load_plain(spec: str | Path) -> PlainLoop:
    """Load a scenario as optdbg does: torch, random and NumPy seeded with 0."""
    path = scenario_path(spec)
    namespace: dict[str, Any] = {"__name__": "__optdbg_scenario__", "__file__": str(path)}
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)
    return PlainLoop(namespace)


class Reference:
    """The plain loop performing ops by name; a refused op leaves the state as it was."""

    def __init__(self, spec: str | Path) -> None:
        self.loop = load_plain(spec)

    def params(self) -> list[torch.Tensor]:
        return self.loop.params()

    def do(self, op: Any) -> str | None:
        if isinstance(op, tuple):  # ("set", group, key, value): plain assignment
            _, group, key, value = op
            assert self.loop.optimizer is not None
            self.loop.optimizer.param_groups[group][key] = value
            return None
        if op == "backward" and self.loop.loss is None:
            return "UsageError"
        grads = [None if p.grad is None else p.grad.detach().clone() for p in self.params()]
        try:
            getattr(self.loop, op)()
        except Exception as e:
            for p, g in zip(self.params(), grads, strict=True):
                p.grad = g
            return type(e).__name__
        return None


# ----------------------------------------------------------------- full state, bit for bit


def _copy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_copy(v) for v in value)
    return value


@dataclass
class State:
    values: dict[str, Any]

    @classmethod
    def of(
        cls,
        namespace: dict[str, Any],
        params: list[torch.Tensor],
        optimizer: torch.optim.Optimizer | None,
        loss: torch.Tensor | None,
        epoch: int,
        batch: int,
    ) -> State:
        groups = optimizer.param_groups if optimizer is not None else []
        values: dict[str, Any] = {
            "params": [p.detach().clone() for p in params],
            "grads": [_copy(p.grad) for p in params],
            "opt_state": [
                _copy(dict(optimizer.state.get(p, {}))) if optimizer is not None else {}
                for p in params
            ],
            "hyper": [{k: _copy(v) for k, v in g.items() if k != "params"} for g in groups],
            "loss": _copy(loss),
            "epoch_batch": (epoch, batch),
            "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
            "numpy_rng": np.random.get_state(),
        }
        scheduler = namespace.get("scheduler")
        if scheduler is not None:
            sd = scheduler.state_dict()
            values["scheduler"] = (sd["last_epoch"], list(sd["_last_lr"]), sd["_step_count"])
        for key, value in sorted(namespace.items()):
            if key.startswith("__"):
                continue
            if isinstance(value, torch.nn.Module):
                values[f"{key}.buffers"] = [b.clone() for b in value.buffers()]
            elif isinstance(value, torch.Tensor) and value.requires_grad:
                values[f"{key}.value"] = value.detach().clone()
                values[f"{key}.grad"] = _copy(value.grad)
            elif isinstance(value, int | float) and not isinstance(value, bool):
                values[f"{key}.scalar"] = value
            elif isinstance(value, np.random.Generator):
                values[f"{key}.rng"] = value.bit_generator.state
            elif isinstance(value, random.Random):
                values[f"{key}.rng"] = value.getstate()
        return cls(values)


def bits(t: torch.Tensor) -> torch.Tensor:
    return t.detach().contiguous().reshape(-1).view(torch.uint8)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.shape == b.shape
            and a.dtype == b.dtype
            and torch.equal(bits(a), bits(b))
        )
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(type(a) is type(b) and a == b)


def assert_same(got: State, want: State, where: str) -> None:
    assert got.values.keys() == want.values.keys(), where
    for key in want.values:
        assert same(got.values[key], want.values[key]), (
            f"{where}: {key} differs\nsession: {got.values[key]}\nplain:   {want.values[key]}"
        )


def session_state(session: Session) -> State:
    params = [t.tensor for t in session.tracks]
    optimizer = None if session.scenario.is_manual else session.optimizer  # its own step()
    ns = session.scenario.namespace
    return State.of(ns, params, optimizer, session.loss, session.epoch, session.batch)


def plain_state(ref: Reference) -> State:
    loop = ref.loop
    return State.of(loop.ns, loop.params(), loop.optimizer, loop.loss, loop.epoch, loop.batch)


# ----------------------------------------------------------------- the timeline model


class Timeline:
    """What the history should be, kept without the engine: applied ops and redoable ones."""

    def __init__(self) -> None:
        self.applied: list[Any] = []
        self.redo: list[Any] = []  # the next op to redo last

    def new(self, ops: list[Any]) -> None:
        self.applied += ops
        self.redo.clear()

    def undo(self, n: int) -> None:
        for _ in range(min(n, len(self.applied))):
            self.redo.append(self.applied.pop())

    def redo_(self, n: int) -> None:
        for _ in range(min(n, len(self.redo))):
            self.applied.append(self.redo.pop())

    def goto(self, index: int) -> None:
        everything = self.applied + self.redo[::-1]
        self.applied = everything[: index + 1]
        self.redo = everything[index + 1 :][::-1]

    @property
    def length(self) -> int:
        return len(self.applied) + len(self.redo)


def perform(session: Session, timeline: Timeline, word: Any) -> None:
    """One step of a test sequence, on the session and on the model of its timeline."""
    if isinstance(word, tuple) and word[0] == "goto":
        index = min(timeline.length - 1, int(word[1] * (timeline.length + 1)) - 1)
        event = session.goto(index)
        assert event.ok, event.summary
        timeline.goto(index)
    elif isinstance(word, tuple) and word[0] == "undo":
        event = session.undo(word[1])
        assert event.ok == bool(timeline.applied), event.summary
        timeline.undo(word[1])
    elif isinstance(word, tuple) and word[0] == "set":
        if session.scenario.is_manual:
            return  # no param groups to edit: the manual form's lr is the scenario's own
        event = session.set_hyper(0, "lr", word[1])
        assert event.op == "set" and event.ok
        timeline.new([("set", 0, "lr", word[1])])
    elif word in ("u", "undo"):
        [event] = session.perform(word)
        assert event.op == "undo" and event.ok == bool(timeline.applied), event.summary
        timeline.undo(1)
    elif word == "redo":
        [event] = session.perform(word)
        assert event.op == "redo" and event.ok == bool(timeline.redo), event.summary
        timeline.redo_(1)
    else:
        events = session.perform(word)
        timeline.new([e.op for e in events])


def logged_ops(session: Session) -> list[Any]:
    ops: list[Any] = []
    for entry in session.history.entries[: len(session.events)]:
        if entry.event.op == "set":
            assert entry.args is not None
            ops.append(("set", *entry.args))
        else:
            ops.append(entry.event.op)
    return ops


TAIL = ["backward", "forward", "backward", "step", "forward"]
"""Ops performed on both after the sequence: through the restored graph, the next batch,
fresh random numbers."""


def check(spec: str | Path, words: list[Any], history_mb: float | None = None) -> Session:
    session = Session.open(spec, history_mb=history_mb)
    timeline = Timeline()
    for word in words:
        perform(session, timeline, word)
        assert session.history.divergence is None, session.history.divergence
    assert [e.op for e in session.events] == [
        op[0] if isinstance(op, tuple) else op for op in timeline.applied
    ]
    assert logged_ops(session) == timeline.applied
    got = session_state(session)
    got_tail = []
    for op in TAIL:
        event = getattr(session, op)()
        got_tail.append((event.error.type if event.error else None, session_state(session)))
    ref = Reference(spec)
    for op in timeline.applied:
        ref.do(op)
    where = f"{spec} after {words!r} (plain ops {timeline.applied!r})"
    assert_same(got, plain_state(ref), where)
    for op, (error, state) in zip(TAIL, got_tail, strict=True):
        assert ref.do(op) == error, f"{where}, then {op}"
        assert_same(state, plain_state(ref), f"{where}, then {op}")
    return session


# ----------------------------------------------------------------- every scenario, fixed sequences

SEQUENCE = [
    "i", "i", "f", "b", "u", "u", "redo", "s", "z", ("goto", 0.3), "i", ("undo", 5), "redo",
    "redo", "f", "b", ("set", 0.02), "s", "u", "u", "redo", "n", "n", ("goto", 1.0),
    ("goto", 0.0), "redo", "i",
]  # fmt: skip


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_undo_redo_goto_equal_plain_loop(name: str) -> None:
    check(name, SEQUENCE)


@pytest.mark.parametrize("file", list(CUSTOM))
def test_rng_scenario_undo_redo_goto_equal_plain_loop(custom_dir: Path, file: str) -> None:
    check(custom_dir / file, SEQUENCE + ["i"] * 6 + [("undo", 17), "i", ("goto", 0.5)])


@pytest.mark.parametrize("file", list(CUSTOM))
def test_rng_scenario_with_a_tiny_budget_replays_from_the_start(
    custom_dir: Path, file: str
) -> None:
    session = check(custom_dir / file, ["i"] * 8 + [("goto", 0.4), "f", ("undo", 3)], 0)
    assert [c.position for c in session.history.checkpoints] == [0]


# ----------------------------------------------------------------- random sequences

WORD = st.one_of(
    st.sampled_from(["f", "b", "s", "z", "n", "i", "u", "u", "redo", "redo"]),
    st.tuples(st.just("goto"), st.floats(0, 1)),
    st.tuples(st.just("undo"), st.integers(2, 6)),
    st.tuples(st.just("set"), st.sampled_from([0.0, 0.003, 0.05])),
)


@settings(
    max_examples=45,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(
    name=st.sampled_from([*BUILTINS, *CUSTOM]),
    words=st.lists(WORD, max_size=14),
    history_mb=st.sampled_from([None, 0.0]),
)
def test_random_sequences_with_time_travel_equal_plain_loop(
    custom_dir: Path, name: str, words: list[Any], history_mb: float | None
) -> None:
    spec = custom_dir / name if name in CUSTOM else name
    check(spec, words, history_mb)


# ----------------------------------------------------------------- semantics


def test_undo_to_the_start_restores_the_loaded_state(custom_dir: Path) -> None:
    spec = custom_dir / "rng_everywhere.py"
    fresh = Session.open(spec)
    want = session_state(fresh)
    session = Session.open(spec)
    for _ in range(7):
        session.iteration()
    event = session.undo(1000)
    assert event.ok and event.op == "undo" and event.summary.endswith("now the start")
    assert event.index == 0 and event.loss is None
    assert session.events == [] and session.loss is None and session.loss_history == []
    snap = session.snapshot()
    assert (snap.op_count, snap.step_count, snap.iteration, snap.epoch, snap.batch) == (
        0, 0, 0, 0, 0
    )  # fmt: skip
    assert snap.next_op == "forward" and not snap.has_graph
    assert_same(session_state(session), want, "after undo to the start")
    assert session.timeline() and all(e.undone for e in session.timeline())  # all redoable
    refused = session.undo()
    assert refused.error is not None and "nothing to undo" in refused.error.message


def test_redo_brings_back_the_same_events_and_state() -> None:
    session = Session.open("mlp_sequential")
    for word in ["i", "i", "f", "b", "s"]:
        session.perform(word)
    events = list(session.events)
    want = session_state(session)
    assert session.undo(6).ok
    assert len(session.events) == len(events) - 6
    assert session.redo(2).ok and len(session.events) == len(events) - 4
    event = session.redo(10)
    assert event.ok and event.op == "redo" and event.index == len(events) - 1
    assert session.events == events
    assert_same(session_state(session), want, "after undo 6, redo 2, redo 10")
    assert session.loss_history == [e.loss for e in events if e.op == "forward"]
    assert session.redo().error is not None


def test_a_new_op_after_undo_drops_the_redo_branch() -> None:
    session = Session.open("quadratic_bowl")
    for word in ["f", "b", "s", "z", "f", "b"]:
        session.perform(word)
    session.undo(3)
    assert [t.undone for t in session.timeline()] == [False] * 3 + [True] * 3
    [event] = session.perform("s")
    assert event.index == 3 and event.op == "step"
    assert [t.op for t in session.timeline()] == ["forward", "backward", "step", "step"]
    assert not any(t.undone for t in session.timeline())
    refused = session.redo()
    assert refused.error is not None and "nothing to redo" in refused.error.message
    ref = Reference("quadratic_bowl")
    for op in ["forward", "backward", "step", "step"]:
        ref.do(op)
    assert_same(session_state(session), plain_state(ref), "f b s, then s after undo")


def test_goto_any_op_and_the_start() -> None:
    session = Session.open("linear_regression_minibatch")
    for _ in range(30):
        session.iteration()
    states = {}
    for index in (-1, 0, 57, 58, 59, 60, 119):
        event = session.goto(index)
        assert event.ok and len(session.events) == index + 1
        states[index] = session_state(session)
        assert session.history.position == index + 1
    for index, state in reversed(list(states.items())):
        session.goto(index)
        assert_same(session_state(session), state, f"goto {index} again")
    with pytest.raises(ValueError, match="no op 120"):
        session.goto(120)


def test_undo_after_an_error_and_backward_through_the_restored_graph() -> None:
    session = Session.open("mlp_sequential")
    events = [e for w in ["f", "b", "b"] for e in session.perform(w)]
    assert events[-1].error is not None  # the freed graph
    session.undo()
    [again] = session.perform("b")  # the graph is freed again after the replayed backward
    assert again.error is not None and again.error.type == events[-1].error.type
    session.undo(2)  # back to after the forward: the graph is whole
    [ok] = session.perform("b")
    assert ok.ok


def test_graph_after_undo_is_the_graph_of_the_replayed_forward() -> None:
    session = Session.open("dag_toy")
    session.capture_graph = True
    session.perform("f")
    graph = session.graph()
    assert graph is not None
    session.perform("b")
    session.perform("s")
    session.undo(2)
    again = session.graph()
    assert again is not None
    assert [n.label for n in again.nodes.values()] == [n.label for n in graph.nodes.values()]
    assert [n.value for n in again.nodes.values()] == [n.value for n in graph.nodes.values()]


def test_update_detail_and_accumulation_survive_undo() -> None:
    session = Session.open("quadratic_bowl")
    for word in ["f", "b", "s", "f", "b"]:
        session.perform(word)
    want_snap = session.snapshot()
    want_detail = session.update_detail("t")
    session.perform("b")  # refused: the graph is freed
    session.perform("z")
    session.undo(2)
    assert session.snapshot() == want_snap
    assert session.update_detail("t") == want_detail


def test_detector_warnings_repeat_identically_after_undo() -> None:
    def run(session: Session) -> list[tuple[Any, ...]]:
        start = len(session.events)
        for word in ["f", "b", "s", "s", "f", "b", "b", "f", "b", "s", "z", "i", "i"]:
            session.perform(word)
        return [(e.op, e.summary, e.loss, e.warnings, e.error) for e in session.events[start:]]

    session = Session.open("quadratic_bowl_lr10")
    first = run(session)
    session.undo(1000)
    assert run(session) == first


def test_replay_that_differs_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "impure.py"
    path.write_text(
        "import itertools\n"
        "import torch\n"
        "t = torch.tensor([1.0], requires_grad=True)\n"
        "optimizer = torch.optim.SGD([t], lr=0.1)\n"
        "calls = itertools.count(1)  # not plain data: optdbg cannot restore it\n"
        "def forward():\n"
        "    return (t * next(calls)).sum()\n",
        encoding="utf-8",
    )
    session = Session.open(path, history_mb=0)
    session.perform("f")
    session.perform("f")
    event = session.undo()
    assert event.ok and event.codes() == ("replay-diverged",)
    assert "not deterministic" in event.warnings[0].message


def test_one_shot_data_refuses_undo_but_runs(tmp_path: Path) -> None:
    path = tmp_path / "generator_data.py"
    path.write_text(
        "import torch\n"
        "t = torch.tensor([1.0], requires_grad=True)\n"
        "optimizer = torch.optim.SGD([t], lr=0.1)\n"
        "data = (torch.tensor([float(i)]) for i in range(100))\n"
        "def forward(batch):\n"
        "    return (t * batch).sum()\n",
        encoding="utf-8",
    )
    session = Session.open(path)
    assert all(e.ok for e in session.iteration())
    event = session.undo()
    assert event.error is not None and "one-shot iterator" in event.error.message
    assert len(session.events) == 4 and session.history.unavailable is not None


# ----------------------------------------------------------------- live hyperparameters


def test_set_hyper_takes_effect_at_the_next_step_and_is_undoable() -> None:
    session = Session.open("quadratic_bowl")
    session.perform("f")
    session.perform("b")
    event = session.set_hyper(0, "lr", 0.05)
    assert event.op == "set" and event.summary == "lr: 0.1 → 0.05" and event.index == 2
    assert session.snapshot().lrs == (0.05,)
    session.perform("s")
    detail = session.update_detail("t")
    assert detail is not None and detail.hyper["lr"] == 0.05
    ref = Reference("quadratic_bowl")
    for op in ["forward", "backward", ("set", 0, "lr", 0.05), "step"]:
        ref.do(op)
    assert_same(session_state(session), plain_state(ref), "lr edited before step")
    session.undo(2)
    assert session.snapshot().lrs == (0.1,) and len(session.events) == 2
    session.redo()
    redone = session.events[-1]  # performed again (observed again): only its time differs
    assert session.snapshot().lrs == (0.05,) and replace(redone, seconds=event.seconds) == event
    assert [t.op for t in session.timeline()] == ["forward", "backward", "set", "step"]


def test_set_hyper_under_a_scheduler_and_in_other_groups() -> None:
    session = Session.open("lr_schedule")
    for _ in range(3):
        session.iteration()
    session.set_hyper(0, "lr", 0.5)
    for _ in range(3):
        session.iteration()
    ref = Reference("lr_schedule")
    for _ in range(3):
        for op in OPS:
            ref.do(op)
    ref.do(("set", 0, "lr", 0.5))
    for _ in range(3):
        for op in OPS:
            ref.do(op)
    assert_same(session_state(session), plain_state(ref), "lr set under a scheduler")
    adam = Session.open("classifier_adam")
    event = adam.set_hyper(0, "betas", "(0.8, 0.99)")
    assert adam.optimizer.param_groups[0]["betas"] == (0.8, 0.99)
    assert event.summary == "betas: (0.9, 0.999) → (0.8, 0.99)"
    adam.set_hyper(0, "amsgrad", True)
    adam.undo(2)
    assert adam.optimizer.param_groups[0]["betas"] == (0.9, 0.999)
    assert adam.optimizer.param_groups[0]["amsgrad"] is False


@pytest.mark.parametrize(
    ("group", "key", "value", "message"),
    [
        (0, "lr", -0.1, "lr must be >= 0"),
        (0, "lr", "fast", "cannot read 'fast'"),
        (0, "lr", float("nan"), "finite"),
        (0, "lr", True, "must be a number"),
        (0, "lr", [0.1], "must be a number"),
        (0, "momentum", -1, "momentum must be >= 0"),
        (0, "nesterov", 1, "nesterov must be True or False"),
        (0, "lrr", 0.1, "no 'lrr'; it has: lr, momentum"),
        (0, "params", [], "not a hyperparameter"),
        (1, "lr", 0.1, "no param group 1"),
    ],
)
def test_set_hyper_refuses_invalid_values(group: int, key: str, value: Any, message: str) -> None:
    session = Session.open("quadratic_bowl")
    before = dict(session.optimizer.param_groups[0])
    with pytest.raises(HyperError, match=message):
        session.set_hyper(group, key, value)
    assert session.optimizer.param_groups[0] == before and session.events == []


def test_set_hyper_refuses_bad_betas() -> None:
    session = Session.open("classifier_adam")
    for value, message in [
        ((0.9,), "pair"),
        ((0.9, 1.0), r"in \[0, 1\)"),
        (("a", 0.9), "pair of finite numbers"),
    ]:
        with pytest.raises(HyperError, match=message):
            session.set_hyper(0, "betas", value)


# ----------------------------------------------------------------- memory

SMALL_MLP = '''
"""MLP 64-128-64-10 with SGD momentum on a fixed random batch of 32."""
import torch
from torch import nn

X = torch.randn(32, 64)
y = torch.randint(0, 10, (32,))
model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                      nn.Linear(64, 10))
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
optdbg_config = {"history_mb": 2}

def forward():
    return loss_fn(model(X), y)
'''


def test_checkpoints_never_exceed_the_budget(tmp_path: Path) -> None:
    path = tmp_path / "small_mlp.py"
    path.write_text(SMALL_MLP, encoding="utf-8")
    session = Session.open(path)
    history = session.history
    assert history.budget == 2 * 2**20  # from optdbg_config
    history.every = 1  # a checkpoint before every forward: eviction at work all the time
    start = session_state(session)
    states = {}
    for k in range(150):
        session.iteration()
        assert history.nbytes <= history.budget
        if k in (10, 75, 149):
            states[len(session.events) - 1] = session_state(session)
    assert history.peak_nbytes <= history.budget
    positions = [c.position for c in history.checkpoints]
    assert positions[0] == 0 and len(positions) >= 4
    gaps = [b - a for a, b in itertools.pairwise(positions)]
    assert gaps[-1] <= gaps[0]  # denser near the current position
    session.goto(-1)
    assert_same(session_state(session), start, "undo to the start")
    for index, state in states.items():
        session.goto(index)
        assert_same(session_state(session), state, f"goto {index}")
        assert history.nbytes <= history.budget
    assert history.divergence is None
    assert Session.open(path, history_mb=3).history.budget == 3 * 2**20  # argument wins


def test_history_budget_must_be_a_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="history_mb"):
        Session.open("quadratic_bowl", history_mb=-1)
    path = tmp_path / "bad_budget.py"
    text = SMALL_MLP.replace('{"history_mb": 2}', '{"history_mb": "lots"}')
    text = text.replace("X = torch", "# optdbg_config is set below\nX = torch")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError, match="history_mb") as raised:
        Session.open(path)
    lines = text.splitlines()
    assert raised.value.line == lines.index('optdbg_config = {"history_mb": "lots"}') + 1
    from optdbg.tui.cli import main

    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "optdbg_config[\"history_mb\"] is 'lots'" in err and "Traceback" not in err


@pytest.mark.slow
def test_long_run_stays_under_the_rss_limit() -> None:
    """A scaled-down bench/history_memory.py in a subprocess: peak RSS (ru_maxrss) under
    1 GiB, checkpoints within their budget after every op, jumps bit-exact."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "history_memory.py"), "--iterations", "60",
         "--history-mb", "64", "--limit-mb", "1024", "--threads", "1", "--json"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    import json

    report = json.loads(result.stdout)
    assert report["peak_rss_mb"] < 1024 and report["ops_over_budget"] == 0
    assert report["checkpoint_peak_mb"] <= 64
    assert all(report["bit_exact"].values())
