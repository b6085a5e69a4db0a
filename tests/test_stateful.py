"""Stateful property tests: random op sequences on every built-in, checked against PyTorch.

Hypothesis drives a Session with every op — f b s z n i, the slow-motion backward, undo,
redo, goto, hyperparameter edits and reloads, with the graph watched or not — in any
order, the wrong ones included. After every step the Session's state must equal, bit for
bit, that of the plain PyTorch loop of tests/plain.py performing the same calls:
parameters, grads (None vs tensor), optimizer state, hyperparameters and the loss. Nothing
may raise except the documented refusals of bad arguments (ValueError for a goto outside
the history or an invalid hyperparameter value).

The model here is independent of engine/history/: it keeps its own list of the ops
performed and the position in it, and rebuilds the reference by replaying the ops up to
the position on a freshly loaded scenario.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from optdbg.engine import Session, builtin_names

sys.path.insert(0, str(Path(__file__).parent))

from test_fidelity import Reference, assert_same, capture, same_float, session_capture

HAS_HISTORY = all(hasattr(Session, m) for m in ("undo", "redo", "goto", "timeline"))
HAS_HYPER = hasattr(Session, "set_hyper")

Entry = tuple[str, tuple[Any, ...] | None, str | None]
"""An op of the model's history: the op name, the arguments of a "set", the error type."""


class SessionMachine(RuleBasedStateMachine):
    """One built-in scenario (`scenario`, set by the subclasses below)."""

    scenario = "quadratic_bowl"

    def __init__(self) -> None:
        super().__init__()
        self.start()

    def start(self) -> None:
        self.session = Session.open(self.scenario)
        self.ref = Reference(self.scenario)
        self.entries: list[Entry] = []
        self.pos = 0

    # ------------------------------------------------------------- the model

    def rebuild(self) -> None:
        """A fresh reference that performed entries[:pos], checking each op fails alike."""
        self.ref = Reference(self.scenario)
        for op, args, error in self.entries[: self.pos]:
            self.replay(op, args, error)

    def replay(self, op: str, args: tuple[Any, ...] | None, error: str | None) -> None:
        if op == "set":
            assert args is not None
            group, key, value = args
            self.ref.optimizer.param_groups[group][key] = value
            return
        assert self.ref.do(op) == error, f"replaying {op} of {self.entries}"

    def performed(self, entries: list[Entry]) -> None:
        """New ops at the position: the undone ops after it are dropped, as in an editor."""
        del self.entries[self.pos :]
        self.entries += entries
        self.pos = len(self.entries)

    # ------------------------------------------------------------- the ops

    @rule(word=st.sampled_from(["f", "b", "s", "z", "n", "i"]))
    def op(self, word: str) -> None:
        events = self.session.perform(word)
        want = self.ref.perform(word)
        got = [(e.op, e.error.type if e.error else None) for e in events]
        assert got == want, f"{self.scenario}: {word} gave {got}, plain PyTorch {want}"
        self.performed([(op, None, error) for op, error in want])

    @precondition(lambda self: hasattr(Session, "backward_steps"))
    @rule()
    def slow_backward(self) -> None:
        """B in the TUI: one normal backward, recorded node by node."""
        event, steps = self.session.backward_steps()
        want = self.ref.perform("b")
        assert [(event.op, event.error.type if event.error else None)] == want
        assert (len(steps) > 0) == (event.ok and self.session.loss is not None), steps
        self.performed([(op, None, error) for op, error in want])

    @rule(on=st.booleans())
    def watch_graph(self, on: bool) -> None:
        """The TUI watches values in the graph (capture_graph): observing changes nothing."""
        self.session.capture_graph = on

    @precondition(lambda self: HAS_HISTORY)
    @rule(n=st.integers(1, 6))
    def undo(self, n: int) -> None:
        event = self.session.undo(n)
        if self.pos == 0:
            assert event.error is not None and event.error.type == "UsageError"
            return
        assert event.ok, event
        assert "replay-diverged" not in event.codes(), event.warnings
        self.pos = max(0, self.pos - n)
        self.rebuild()

    @precondition(lambda self: HAS_HISTORY)
    @rule(n=st.integers(1, 6))
    def redo(self, n: int) -> None:
        event = self.session.redo(n)
        if self.pos == len(self.entries):
            assert event.error is not None and event.error.type == "UsageError"
            return
        assert event.ok, event
        assert "replay-diverged" not in event.codes(), event.warnings
        target = min(len(self.entries), self.pos + n)
        for op, args, error in self.entries[self.pos : target]:
            self.replay(op, args, error)
        self.pos = target

    @precondition(lambda self: HAS_HISTORY)
    @rule(data=st.data())
    def goto(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(-2, len(self.entries)), label="index")
        if not -1 <= index < len(self.entries):
            with pytest.raises(ValueError):
                self.session.goto(index)
            return
        event = self.session.goto(index)
        assert event.ok, event
        assert "replay-diverged" not in event.codes(), event.warnings
        target = index + 1
        if target >= self.pos:
            for op, args, error in self.entries[self.pos : target]:
                self.replay(op, args, error)
            self.pos = target
        else:
            self.pos = target
            self.rebuild()

    @precondition(lambda self: HAS_HYPER and not self.session.scenario.is_manual)
    @rule(
        lr=st.sampled_from([0.0, 1e-3, 0.05, 0.1, 0.3]),
        group=st.integers(0, 1),
    )
    def set_lr(self, lr: float, group: int) -> None:
        groups = len(self.session.optimizer.param_groups)
        if group >= groups:
            with pytest.raises(ValueError):
                self.session.set_hyper(group, "lr", lr)
            return
        if isinstance(self.session.optimizer.param_groups[group]["lr"], torch.Tensor):
            return  # a tensor lr is edited in place by some schedulers: not a plain float
        event = self.session.set_hyper(group, "lr", lr)
        assert event.ok and event.op == "set", event
        self.ref.optimizer.param_groups[group]["lr"] = lr
        self.performed([("set", (group, "lr", lr), None)])

    @precondition(lambda self: HAS_HYPER and not self.session.scenario.is_manual)
    @rule(value=st.sampled_from([-1.0, float("nan"), float("inf"), "fast", None]))
    def set_invalid_lr(self, value: Any) -> None:
        """Refused with a ValueError (HyperError), and nothing changes or is logged."""
        with pytest.raises(ValueError):
            self.session.set_hyper(0, "lr", value)

    @rule()
    def reload(self) -> None:
        """What `r` does: a new Session on a freshly loaded scenario."""
        self.start()

    # ------------------------------------------------------------- the checks

    @invariant()
    def same_state_as_plain_pytorch(self) -> None:
        where = f"{self.scenario} after {[e[0] for e in self.entries[: self.pos]]}"
        assert_same(
            session_capture(self.session),
            capture(self.ref.optimizer, self.ref.loss, self.ref.loop.params()),
            where,
        )
        want = None if self.ref.loss is None else self.ref.loss.detach()
        if want is not None and want.numel() == 1:
            assert same_float(self.session.loss_value, want.item()), where
        assert self.session.next_op == self.ref.pattern[self.ref.next], where

    @invariant()
    def history_matches_the_model(self) -> None:
        snap = self.session.snapshot()
        assert snap.op_count == self.pos
        assert [e.op for e in self.session.events] == [e[0] for e in self.entries[: self.pos]]
        if HAS_HISTORY:
            timeline = self.session.timeline()
            assert [t.op for t in timeline] == [e[0] for e in self.entries]
            assert [t.undone for t in timeline] == [i >= self.pos for i in range(len(timeline))]
            assert [t.ok for t in timeline] == [e[2] is None for e in self.entries]

    @invariant()
    def observing_never_raises(self) -> None:
        snap = self.session.snapshot()
        for p in snap.params[:3]:
            self.session.update_detail(p.name)
        self.session.graph()
        if snap.loss is not None:
            assert math.isnan(snap.loss) or isinstance(snap.loss, float)


SETTINGS = settings(
    max_examples=15,
    stateful_step_count=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
SLOW = {"classifier_adam", "linear_regression_minibatch"}
"""Bigger scenarios (a DataLoader, Adam over an MLP): fewer examples keep the file fast."""

INTERLEAVED = {"classifier_eval"}
"""Scenarios drawing from the global generator during ops (dropout): the machine interleaves
the session and the reference on that one generator, so they would see different draws;
test_fidelity and test_history compare them run one after the other."""

for _name in [n for n in builtin_names() if n not in INTERLEAVED]:
    _machine = type(f"Machine_{_name}", (SessionMachine,), {"scenario": _name})
    _case = _machine.TestCase
    _case.settings = settings(SETTINGS, max_examples=8 if _name in SLOW else 15)
    _case.__name__ = f"TestStateful_{_name}"
    globals()[_case.__name__] = _case
del _name, _machine, _case
