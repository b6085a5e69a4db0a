"""Observing lazily never shows a stale value: the views (summaries) a Session keeps
across ops equal, bit for bit, what a plain loop's tensors give at every op, including
ops that change tensors without moving their version counters (writes through `.data`,
fused optimizers)."""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from plain import PlainLoop, run_plain

from optdbg.engine import Session, snapshot
from optdbg.engine.report import json_line
from optdbg.engine.snapshot import ParamSnapshot

SCENARIO = """
import torch
torch.manual_seed(1)
w = torch.randn(300, requires_grad=True)
b = torch.randn(3, requires_grad=True)
optimizer = torch.optim.{optimizer}
calls = [0]

def forward():
    calls[0] += 1
    if calls[0] % 2 == 0:
        w.data.mul_(0.5)  # a write the version counter does not see
    return ((w - 1) ** 2).mean() + (b ** 2).sum()
"""


KEYS = ("mean", "std", "min", "max", "norm")


def _expected(t: torch.Tensor | None) -> Any:
    if t is None:
        return None
    t = t.detach()
    if t.numel() <= 64:
        return t.tolist()
    stats = [float(s) for s in (t.mean(), t.std(), t.min(), t.max(), t.norm())]
    return {"shape": list(t.shape), **dict(zip(KEYS, stats, strict=True))}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@pytest.mark.parametrize(
    "optimizer",
    ["SGD([w, b], lr=0.1, momentum=0.9)", "Adam([w, b], lr=0.1, fused=True)"],
)
def test_json_records_follow_unversioned_writes(tmp_path: Path, optimizer: str) -> None:
    path = tmp_path / "scenario.py"
    path.write_text(SCENARIO.format(optimizer=optimizer), encoding="utf-8")
    session = Session.open(path)
    plain = PlainLoop(run_plain(path))
    words = ["f", "b", "s", "z", "f", "b", "f", "b", "s", "s", "z", "z", "f", "b", "s"]
    for word in words:
        (event,) = session.perform(word)
        plain.op(word)
        got = json.loads(json_line(event, session))
        ns = plain.ns
        for name in ("w", "b"):
            assert _same(got["params"][name], _expected(ns[name])), (event.index, word, name)
            assert _same(got["grads"][name], _expected(ns[name].grad)), (event.index, word, name)
        snap = session.snapshot()
        assert _same(snap.param("w").value.to_json(), _expected(ns["w"]))


@pytest.mark.parametrize(
    "optimizer",
    ["SGD([w, b], lr=0.1, momentum=0.9)", "Adam([w, b], lr=0.1, fused=True)"],
)
def test_the_update_panel_shows_the_plain_step_bit_for_bit(
    tmp_path: Path, optimizer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The update detail takes the views already shown of what its step record copied (the
    value and state before the step; the value after, while the parameter still holds it)
    instead of summarizing them again: at every op, a write through `.data` included, they
    are a plain loop's tensors before and after its last step."""
    path = tmp_path / "scenario.py"
    path.write_text(SCENARIO.format(optimizer=optimizer), encoding="utf-8")
    session = Session.open(path)
    plain = PlainLoop(run_plain(path))
    opt = plain.ns["optimizer"]
    w = plain.ns["w"]
    shown = None
    summaries = []
    real = snapshot.summary_stats
    monkeypatch.setattr(snapshot, "summary_stats", lambda t: summaries.append(t) or real(t))
    words = ["f", "b", "s", "z", "f", "b", "s", "f", "b", "f", "s", "z", "z", "f", "b", "s", "f"]
    for word in words:
        if word == "s":
            state = {k: _expected(v) for k, v in opt.state.get(w, {}).items()}
            before = _expected(w)
        session.perform(word)
        plain.op(word)
        if word == "s":
            shown = (before, _expected(w), state)
        snap = session.snapshot()  # as a UI does: the snapshot, then the update detail
        assert _same(snap.param("w").value.to_json(), _expected(w))
        summaries.clear()
        detail = session.update_detail("w")
        if word == "s":  # everything it shows was shown already
            assert summaries == [], word
        if shown is None:  # no step yet
            assert detail is None
            continue
        assert detail is not None
        assert _same(detail.before.to_json(), shown[0]), (word, "before")
        assert _same(detail.after.to_json(), shown[1]), (word, "after")
        got = {k: getattr(v, "to_json", lambda v=v: v)() for k, v in detail.state_before.items()}
        assert _same(got, shown[2]), (word, "state before")


def test_a_snapshot_takes_the_optimizer_state_of_the_parameters_asked_for() -> None:
    session = Session.open("classifier_adam")
    session.perform("i")
    full = session.snapshot()
    assert all(p.state for p in full.params)
    name = full.params[0].name
    only = session.snapshot(states=(name,))
    assert only.param(name) == full.param(name)
    assert all(p.state == {} for p in only.params if p.name != name)
    assert only.params[1:] == tuple(
        ParamSnapshot(**{**vars(p), "state": {}}) for p in full.params[1:]
    )


def test_views_survive_backward_zero_grad_and_a_plain_torch_step_only() -> None:
    session = Session.open("quadratic_bowl")
    kept = {"forward": False, "backward": True, "step": True, "zero_grad": True}
    for op, keeps in kept.items():
        assert session.keeps_views(op) is keeps, op


BOWL = """
import torch
t = torch.tensor([10.0, 10.0], requires_grad=True)
{optimizer}


def forward():
    return (t[0] - 3) ** 2 + (t[1] + 2) ** 2 + 8
"""


@pytest.mark.parametrize(
    "optimizer",
    [
        "optimizer = torch.optim.Adam([t], lr=0.1, fused=True)",  # writes behind the counters
        "class Mine(torch.optim.SGD):\n"
        "    def step(self, closure=None):\n"
        "        return super().step(closure)\n"
        "optimizer = Mine([t], lr=0.1)",
        "optimizer = torch.optim.SGD([t], lr=0.1)\n"
        "optimizer.register_step_post_hook(lambda o, a, k: t.data.mul_(1))",
        "optimizer = torch.optim.SGD([t], lr=0.1)\n"
        "scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda n: 1.0)",
        "def step():\n    t.data -= 0.1 * t.grad",  # a manual update
    ],
)
def test_a_step_running_code_that_may_write_behind_the_counters_drops_the_views(
    tmp_path: Path, optimizer: str
) -> None:
    """A fused step, a subclass's step, a step hook, a scheduler stepped with the step
    and a manual update each may write without moving a version counter: the views shown
    before the step must be proven again after it."""
    path = tmp_path / "bowl.py"
    path.write_text(BOWL.format(optimizer=optimizer))
    session = Session.open(path)
    assert session.keeps_views("step") is False
    assert session.keeps_views("backward") is True


def test_a_memo_keeps_no_tensor_alive() -> None:
    import gc
    import weakref

    from optdbg.engine.snapshot import ViewMemo, shared_views, view

    memo = ViewMemo()
    t = torch.randn(1000)
    ref = weakref.ref(t)
    with shared_views(memo):
        first = view(t)
        assert view(t) is first
    del t
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize("name", ["quadratic_bowl", "linear_regression"])
def test_a_step_without_its_record_says_and_does_the_same(name: str) -> None:
    """`optdbg run` turns step_detail off (nothing copied at a step): the same events, the
    same values, only the update detail is not kept."""
    full, bare = Session.open(name), Session.open(name)
    bare.step_detail = False
    for word in ["z", "f", "b", "s", "s", "f", "b", "s", "z", "s", "f", "b", "s"]:
        (a,) = full.perform(word)
        (b,) = bare.perform(word)
        assert (a.summary, a.loss, a.warnings, a.error) == (b.summary, b.loss, b.warnings, b.error)
        assert json_line(a, full) == json_line(b, bare)
    name0 = full.snapshot().params[0].name
    assert full.update_detail(name0) is not None
    assert bare.update_detail(name0) is None


SLOW = """
import time
import torch
w = torch.tensor([1.0, 2.0], requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)

def forward():
    time.sleep(0.15)
    return (w ** 2).sum()
"""


async def test_keys_faster_than_ops_are_all_performed_with_one_frame(tmp_path: Path) -> None:
    """Keys queued behind a running op are performed in order in one job, and the panels
    show their end state once (no frame per intermediate op)."""
    from pilot_helpers import log_text, settle

    from optdbg.tui.app import OptDbgApp

    class Counting(OptDbgApp):
        CSS_PATH = str(Path(inspect.getfile(OptDbgApp)).parent / str(OptDbgApp.CSS_PATH))
        applied: list[int]

        def _apply(self, view: Any) -> None:
            self.applied.append(view.snapshot.op_count)
            super()._apply(view)

    path = tmp_path / "slow.py"
    path.write_text(SLOW, encoding="utf-8")
    app = Counting(Session.open(path))
    app.applied = []
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        app.applied.clear()
        for _ in range(4):  # what `i` does, four times before the first is done
            app.action_op("iteration")
        await settle(pilot)
        assert app.view is not None and app.view.snapshot.op_count == 16
        assert app.view.snapshot.step_count == 4
        assert app.applied[-1] == 16 and len(app.applied) < 4, app.applied
        text = log_text(app)
        assert all(f"#{k}" in text for k in (0, 5, 10, 15)), text
    plain = PlainLoop(run_plain(path))
    for _ in range(4):
        plain.op("i")
    assert app.view.snapshot.param("w").value.values == plain.ns["w"].tolist()


def test_a_kept_view_is_proven_by_its_bits_after_an_op_that_may_write_unseen() -> None:
    """After a forward (or step) a view is used again only when a copy of the tensor's bits
    still matches; a write through `.data` (no version change) gets a fresh view."""
    from optdbg.engine.snapshot import ViewMemo, shared_views, view

    memo = ViewMemo(proof_bytes=1 << 20)
    t = torch.randn(1000)
    with shared_views(memo):
        first = view(t)
        memo.suspect()
        assert view(t) is first  # proven: the same bits
        memo.suspect()
        t.data.mul_(2.0)  # the version counter does not move
        again = view(t)
        assert again is not first and again.summary == _view_of(t)
    none = ViewMemo()  # no room for proofs: suspect forgets
    with shared_views(none):
        first = view(t)
        none.suspect()
        assert view(t) is not first


def _view_of(t: torch.Tensor) -> Any:
    from optdbg.engine.snapshot import summarize

    return summarize(t)


@pytest.mark.parametrize("detail", [True, False])
def test_a_fused_step_summary_shows_the_norms_after_it(tmp_path: Path, detail: bool) -> None:
    """Norms are shared within an op, and forgotten after the step itself (a fused step
    writes without moving version counters): the summary's after-norm is the new value's."""
    from optdbg.engine import fmt

    path = tmp_path / "scenario.py"
    path.write_text(SCENARIO.format(optimizer="Adam([w, b], lr=0.1, fused=True)"), "utf-8")
    session = Session.open(path)
    session.step_detail = detail  # off as in `optdbg run`: no copies, the live tensors
    plain = PlainLoop(run_plain(path))
    for word in ["f", "b"]:
        session.perform(word)
        plain.op(word)
    before = float(torch.linalg.vector_norm(plain.ns["w"].detach()))
    (event,) = session.perform("s")
    plain.op("s")
    after = float(torch.linalg.vector_norm(plain.ns["w"].detach()))
    assert before != after
    shape = fmt.shape((300,))
    assert f"w: {shape} ‖·‖ {fmt.num(before, 4)} → {shape} ‖·‖ {fmt.num(after, 4)}" in event.summary
