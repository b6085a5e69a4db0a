"""Graph extraction, gradient flow and the slow-motion backward (engine, no UI).

Values are checked against what PyTorch computes in a plain loop written here
(torch.autograd.grad on the same expression) or by hand, bit for bit where PyTorch
computes them the same way.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from plain import PlainLoop, run_plain

from optdbg.engine import Session, builtin_names
from optdbg.engine.graph import FREED, FlowRecorder, Graph, extract, walk
from optdbg.engine.snapshot import summary_stats


def bits(t: torch.Tensor | None) -> bytes | None:
    return None if t is None else t.detach().cpu().contiguous().numpy().tobytes()


def opened(name: str | Path, capture: bool = True) -> Session:
    session = Session.open(name)
    session.capture_graph = capture
    return session


def chain(graph: Graph) -> list[str]:
    """Node names from the root, following the first input."""
    names, nid = [], graph.root
    while nid is not None:
        names.append(graph.nodes[nid].name)
        inputs = graph.inputs(nid)
        nid = inputs[0] if inputs else None
    return names


def node_named(graph: Graph, name: str, module: str | None = None) -> str:
    found = [
        n.id
        for n in graph.nodes.values()
        if n.name == name and (module is None or n.module == module)
    ]
    assert len(found) == 1, (name, module, found)
    return found[0]


DEEP_MLP = '''"""Deep MLP: {blocks} Linear+ReLU blocks

A long chain of modules, for graph size tests.
Each block is Linear(8, 8) then ReLU.
Nothing to learn here.
"""
import torch
from torch import nn

model = nn.Sequential(*[m for _ in range({blocks}) for m in (nn.Linear(8, 8), nn.ReLU())])
loss_fn = nn.MSELoss()
data = [(torch.randn(4, 8), torch.randn(4, 8))]
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
'''


def deep_mlp(folder: Path, blocks: int) -> Path:
    path = folder / f"deep_mlp_{blocks}.py"
    path.write_text(DEEP_MLP.format(blocks=blocks), encoding="utf-8")
    return path


# ----------------------------------------------------------------- structure


def test_log_xy_is_sum_log_mul_and_two_leaves() -> None:
    session = opened("log_xy")
    session.forward()
    graph = session.graph()
    assert graph is not None and graph.captured
    assert chain(graph)[:3] == ["SumBackward0", "LogBackward0", "MulBackward0"]
    assert [graph.nodes[n].label for n in (graph.root, *graph.inputs(graph.root))] == [
        "sum",
        "log",
    ]
    mul = graph.nodes[node_named(graph, "MulBackward0")]
    leaves = [graph.nodes[i] for i in graph.inputs(mul.id)]
    assert [(n.name, n.param, n.label) for n in leaves] == [
        ("AccumulateGrad", "x", "x"),
        ("AccumulateGrad", "y", "y"),
    ]
    assert all(n.is_leaf for n in leaves)
    assert len(graph) == 5 and len(graph.edges) == 4
    assert set(graph.edges) == {(a, b) for a in graph.nodes for b in graph.inputs(a)}
    assert graph.leaf("x") == leaves[0].id and graph.leaf("nope") is None
    assert graph.consumers(leaves[1].id) == [mul.id]


def test_log_xy_node_data_equals_the_forward_values() -> None:
    ns = run_plain("log_xy")
    x, y = ns["x"], ns["y"]
    session = opened("log_xy")
    session.forward()
    graph = session.graph()
    assert graph is not None
    log_id = graph.inputs(graph.root)[0]
    mul_id = graph.inputs(log_id)[0]
    assert graph.nodes[mul_id].value.values == (x * y).tolist()
    assert graph.nodes[log_id].value.values == torch.log(x * y).tolist()
    assert graph.nodes[graph.root].value.values == torch.log(x * y).sum().item()
    assert graph.loss is not None and graph.loss.values == torch.log(x * y).sum().item()
    x_leaf = graph.nodes[graph.leaf("x")]
    assert x_leaf.value.values == x.tolist()
    # the saved tensors are named after the scenario's tensors
    saved = {s.name: s for s in graph.nodes[mul_id].saved_tensors}
    assert saved["self"].source == "x" and saved["other"].source == "y"
    assert saved["self"].value.values == x.tolist()
    assert graph.nodes[log_id].saved_tensors[0].value.values == (x * y).tolist()
    assert "1/self" in graph.nodes[log_id].derivative


def test_mlp_sequential_ops_and_modules() -> None:
    session = opened("mlp_sequential")
    session.forward()
    graph = session.graph()
    assert graph is not None
    names = sorted(n.name for n in graph.nodes.values())
    assert names == sorted(
        ["MseLossBackward0", "SigmoidBackward0"]
        + ["AddmmBackward0", "TBackward0"] * 2
        + ["AccumulateGrad"] * 4
    )
    assert graph.nodes[graph.root].name == "MseLossBackward0"
    assert graph.nodes[graph.root].module == "loss_fn"
    node_named(graph, "AddmmBackward0", "model.0")
    node_named(graph, "AddmmBackward0", "model.2")
    node_named(graph, "SigmoidBackward0", "model.1")
    # TBackward0 is made inside F.linear: it belongs to its Linear's module
    node_named(graph, "TBackward0", "model.0")
    node_named(graph, "TBackward0", "model.2")
    for param in ("model.0.weight", "model.0.bias", "model.2.weight", "model.2.bias"):
        leaf = graph.leaf(param)
        assert leaf is not None
        assert graph.nodes[leaf].module == param.rsplit(".", 1)[0]
    assert graph.modules() == ["loss_fn", "model.2", "model.1", "model.0"]
    groups = graph.by_module()
    assert sorted(graph.nodes[n].name for n in groups["model.0"]) == [
        "AccumulateGrad",
        "AccumulateGrad",
        "AddmmBackward0",
        "TBackward0",
    ]
    mat2 = {s.name: s for s in graph.nodes[node_named(graph, "AddmmBackward0", "model.2")].saved}
    assert mat2["mat2"].source == "model.2.weight (view)"
    assert not mat2["alpha"].tensor and mat2["alpha"].value == 1


def test_dag_toy_graph() -> None:
    session = opened("dag_toy")
    session.forward()
    graph = session.graph()
    assert graph is not None
    assert chain(graph) == ["AddBackward0", "MulBackward0", "SubBackward0", "AccumulateGrad"]
    assert [graph.nodes[n].label for n in graph.nodes] == ["add", "mul", "sub", "b"]
    sub = graph.nodes[node_named(graph, "SubBackward0")]
    assert sub.value is not None and sub.value.values == -1.0  # a - b = 3 - 4
    assert graph.nodes[graph.root].value.values == 3.0  # 2 * (3 - 4) + 5


def test_quadratic_bowl_has_one_leaf_used_twice() -> None:
    session = opened("quadratic_bowl")
    session.forward()
    graph = session.graph()
    assert graph is not None
    leaves = [n for n in graph.nodes.values() if n.is_leaf]
    assert [n.param for n in leaves] == ["t"]
    assert sum(1 for n in graph.nodes.values() if n.name == "PowBackward0") == 2
    assert sum(1 for n in graph.nodes.values() if n.name == "SelectBackward0") == 2
    # the leaf has one node, reached from both selects
    assert len(graph.consumers(leaves[0].id)) == 2


@pytest.mark.parametrize("name", builtin_names())
@pytest.mark.parametrize("capture", [True, False])
def test_every_builtin_extracts(name: str, capture: bool) -> None:
    session = opened(name, capture)
    assert session.graph() is None
    session.forward()
    graph = session.graph()
    assert graph is not None and graph.root == "n0"
    assert graph.captured is capture
    assert len(graph) >= 4
    params = {p.name for p in session.snapshot().params}
    leaves = {n.param for n in graph.nodes.values() if n.is_leaf}
    assert leaves <= params and leaves
    for nid, node in graph.nodes.items():
        assert node.id == nid and node.label
        assert node.is_leaf == (not node.inputs)
        if capture and not node.is_leaf and node.name != "TBackward0":
            assert node.value is not None, node
    assert session.graph() is graph  # cached per forward
    assert session.graph_error is None


def test_lazy_graph_after_backward_marks_saved_tensors_freed() -> None:
    session = opened("log_xy", capture=False)
    session.forward()
    session.backward()
    graph = session.graph()
    assert graph is not None and not graph.captured and not graph.has_flow
    saved = graph.nodes[node_named(graph, "MulBackward0")].saved_tensors
    assert saved and all(s.freed and s.note == FREED and s.value is None for s in saved)


def test_saved_tensors_captured_at_forward_survive_backward() -> None:
    ns = run_plain("log_xy")
    session = opened("log_xy")
    session.forward()
    before = session.graph()
    session.backward()
    after = session.graph()
    assert before is not None and after is not None and after is not before
    for graph in (before, after):
        saved = {s.name: s for s in graph.nodes[node_named(graph, "MulBackward0")].saved}
        assert not saved["self"].freed and saved["self"].value.values == ns["x"].tolist()
        assert saved["other"].value.values == ns["y"].tolist()
    # PyTorch itself has freed them (torchviz's show_saved raises here)
    assert session.loss is not None
    mul = session.loss.grad_fn.next_functions[0][0].next_functions[0][0]
    with pytest.raises(RuntimeError):
        _ = mul._saved_self


def test_summaries_of_big_tensors_match_snapshot_summaries() -> None:
    from optdbg.engine.snapshot import view

    ns = run_plain("linear_regression")
    session = opened("linear_regression")
    session.forward()
    graph = session.graph()
    assert graph is not None
    mv = graph.nodes[node_named(graph, "MvBackward0")]
    expected = view(ns["X"] @ ns["w"])
    assert mv.value is not None and mv.value.summary is not None
    assert mv.value.shape == (10000,)
    for field in ("mean", "min", "max"):
        assert getattr(mv.value.summary, field) == getattr(expected.summary, field)
    assert mv.value.summary.norm == pytest.approx(expected.summary.norm, rel=1e-6)
    saved = {s.name: s for s in mv.saved_tensors}
    assert saved["self"].source == "X" and saved["self"].value.shape == (10000, 21)


# ----------------------------------------------------------------- gradient flow


def test_log_xy_flow_equals_autograd_grad() -> None:
    ns = run_plain("log_xy")
    x, y = ns["x"], ns["y"]
    z = x * y
    logz = torch.log(z)
    loss = logz.sum()
    g_logz, g_z, g_x, g_y = torch.autograd.grad(loss, [logz, z, x, y])

    session = opened("log_xy")
    session.forward()
    session.backward()
    graph = session.graph()
    assert graph is not None and graph.has_flow
    log_id = graph.inputs(graph.root)[0]
    mul_id = graph.inputs(log_id)[0]
    flow = graph.flow
    assert flow[graph.root].grad.values == 1.0
    assert flow[graph.root].grad_out[0].values == g_logz.tolist()
    assert flow[log_id].grad.values == g_logz.tolist()
    assert flow[mul_id].grad.values == g_z.tolist()
    assert [v.values for v in flow[mul_id].grad_out] == [g_x.tolist(), g_y.tolist()]
    x_leaf, y_leaf = graph.leaf("x"), graph.leaf("y")
    assert x_leaf is not None and y_leaf is not None
    assert flow[x_leaf].grad.values == g_x.tolist()  # what x's leaf deposited
    assert flow[x_leaf].grad_before is None
    assert flow[x_leaf].grad_after.values == g_x.tolist()
    assert flow[y_leaf].grad_after.values == g_y.tolist()
    # by hand: d/dx sum(log(x*y)) = 1/x
    assert flow[x_leaf].grad.values == pytest.approx([1 / v for v in x.tolist()], rel=1e-6)
    assert flow[y_leaf].grad.values == pytest.approx([1 / v for v in y.tolist()], rel=1e-6)
    assert [f.order for f in flow.values()] == sorted(f.order for f in flow.values())


def test_dag_toy_flow_by_hand() -> None:
    session = opened("dag_toy")
    session.forward()
    session.backward()
    graph = session.graph()
    assert graph is not None
    add, mul, sub, leaf = (graph.nodes[n] for n in graph.nodes)
    flow = graph.flow
    assert flow[add.id].grad.values == 1.0  # dz/dz
    assert flow[mul.id].grad.values == 1.0  # z = m + c
    assert flow[sub.id].grad.values == 2.0  # m = 2 * s
    assert sub.inputs == (None, leaf.id)  # a does not require grad: an empty slot
    assert flow[sub.id].grad_out[0] is None
    assert flow[sub.id].grad_out[1].values == -2.0  # s = a - b
    assert flow[leaf.id].grad.values == -2.0
    assert session.optimizer.param_groups[0]["params"][0].grad.item() == -2.0


def test_mlp_flow_equals_autograd_grad_on_every_node() -> None:
    ns = run_plain("mlp_sequential")
    model, loss_fn = ns["model"], ns["loss_fn"]
    X, y = ns["data"][0]
    h = model[0](X)
    s = model[1](h)
    o = model[2](s)
    loss = loss_fn(o, y)
    params = list(model.parameters())
    grads = torch.autograd.grad(loss, [o, s, h, *params])

    session = opened("mlp_sequential")
    session.forward()
    session.backward()
    graph = session.graph()
    assert graph is not None
    flow = graph.flow
    assert flow[node_named(graph, "AddmmBackward0", "model.2")].grad.values == grads[0].tolist()
    assert flow[node_named(graph, "SigmoidBackward0")].grad.values == grads[1].tolist()
    assert flow[node_named(graph, "AddmmBackward0", "model.0")].grad.values == grads[2].tolist()
    for (name, _), g in zip(model.named_parameters(), grads[3:], strict=True):
        leaf = graph.leaf(f"model.{name}")
        assert leaf is not None
        assert flow[leaf].grad.values == g.tolist()
    for snap in session.snapshot().params:
        leaf = graph.leaf(snap.name)
        assert leaf is not None and flow[leaf].grad_after == snap.grad


def test_accumulating_backward_records_before_deposit_and_after() -> None:
    session = opened("quadratic_bowl")
    for op in ["f", "b", "f", "b"]:
        assert session.perform(op)[0].ok
    graph = session.graph()
    assert graph is not None
    leaf = graph.flow[graph.leaf("t") or ""]
    assert leaf.grad_before.values == [14.0, 24.0]
    assert leaf.grad.values == [14.0, 24.0]
    assert leaf.grad_after.values == [28.0, 24.0 * 2]
    t = session.scenario.namespace["t"]
    assert leaf.grad_after.values == t.grad.tolist()


def test_flow_hooks_are_removed_after_the_pass() -> None:
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()
    fns, _ = walk(loss.grad_fn)
    recorder = FlowRecorder(fns)
    with recorder:
        loss.backward(retain_graph=True)
    seen = list(recorder.order)
    assert len(seen) == 3  # sum, mul, x (the leaf once, for both edges)
    loss.backward()
    assert recorder.order == seen


def test_hooks_are_removed_when_backward_fails() -> None:
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    loss = (x**2).sum()
    loss.backward()
    fns, _ = walk(loss.grad_fn)
    recorder = FlowRecorder(fns)
    with pytest.raises(RuntimeError), recorder:
        loss.backward()
    assert recorder._handles == []


def test_duplicate_edges_keep_their_slots(tmp_path: Path) -> None:
    path = tmp_path / "square.py"
    path.write_text(
        '"""x*x"""\nimport torch\nx = torch.tensor([3.0], requires_grad=True)\n'
        "optimizer = torch.optim.SGD([x], lr=0.1)\n\ndef forward():\n    return (x * x).sum()\n",
        encoding="utf-8",
    )
    session = opened(path)
    session.forward()
    session.backward()
    graph = session.graph()
    assert graph is not None
    mul = graph.nodes[node_named(graph, "MulBackward0")]
    leaf = graph.leaf("x")
    assert mul.inputs == (leaf, leaf)
    assert [v.values for v in graph.flow[mul.id].grad_out] == [[3.0], [3.0]]
    assert graph.flow[leaf].grad.values == [6.0]


@pytest.mark.parametrize("name", builtin_names())
def test_capture_changes_no_value(name: str) -> None:
    """Graph capture and flow hooks on: every value still equals a plain loop, bit for bit."""
    session = opened(name)
    plain = PlainLoop.load(name)
    words = ["f", "b", "s", "z", "f", "b", "f", "b", "s", "f", "b", "s", "z"]
    # each side draws from its own copy of the global generator (dropout), as if alone
    rng_session = rng_plain = torch.get_rng_state()
    for word in words:
        torch.set_rng_state(rng_session)
        session.perform(word)
        rng_session = torch.get_rng_state()
        torch.set_rng_state(rng_plain)
        plain.op(word)
        rng_plain = torch.get_rng_state()
        assert bits(session.loss) == bits(plain.loss), word
        mine = [p for g in session.optimizer.param_groups for p in g["params"]]
        theirs = plain.params()
        for a, b in zip(mine, theirs, strict=True):
            assert bits(a) == bits(b), word
            assert bits(a.grad) == bits(b.grad), word
        graph = session.graph()
        assert graph is not None and graph.captured


# ----------------------------------------------------------------- slow motion


@pytest.mark.parametrize("name", ["log_xy", "mlp_sequential", "classifier_adam", "dag_toy"])
def test_slow_motion_backward_ends_in_the_same_grads(name: str) -> None:
    slow, normal = opened(name, capture=False), opened(name, capture=False)
    plain = PlainLoop.load(name)
    for word in ["f", "b", "s", "z", "f"]:
        slow.perform(word)
        normal.perform(word)
        plain.op(word)
    event, steps = slow.backward_steps()
    assert event.ok and event.op == "backward"
    assert normal.backward().ok
    plain.op("b")
    graph = slow.graph()
    assert graph is not None and steps == graph.steps and len(steps) == len(graph)
    for a, b in zip(slow.snapshot().params, normal.snapshot().params, strict=True):
        assert a.grad == b.grad
    for sess in (slow, normal):
        params = [p for g in sess.optimizer.param_groups for p in g["params"]]
        theirs = plain.params()
        for a, b in zip(params, theirs, strict=True):
            assert bits(a.grad) == bits(b.grad)
    # the replay: root first, each node once, leaves end with their .grad
    assert steps[0].node == graph.root and steps[0].grad_in.values == 1.0
    assert len({s.node for s in steps}) == len(steps)
    assert [s.index for s in steps] == list(range(len(steps)))
    by_name = {p.name: p for p in slow.snapshot().params}
    for step in steps:
        if step.is_leaf:
            assert step.outputs == () and step.grad_after == by_name[step.param].grad
        else:
            assert len(step.outputs) == len(graph.nodes[step.node].inputs)
            assert step.derivative, step.name


def test_slow_motion_chain_rule_numbers_for_log_xy() -> None:
    ns = run_plain("log_xy")
    x, y = ns["x"], ns["y"]
    session = opened("log_xy", capture=False)
    session.forward()
    event, steps = session.backward_steps()
    assert event.ok
    assert [s.name for s in steps] == [
        "SumBackward0",
        "LogBackward0",
        "MulBackward0",
        "AccumulateGrad",
        "AccumulateGrad",
    ]
    log, mul = steps[1], steps[2]
    # log: local derivative 1/(x*y), elementwise
    assert log.local[0] is not None
    assert log.local[0].values == pytest.approx([1 / v for v in (x * y).tolist()], rel=1e-6)
    # mul: d/dx = y, d/dy = x
    assert mul.local[0].values == pytest.approx(y.tolist(), rel=1e-6)
    assert mul.local[1].values == pytest.approx(x.tolist(), rel=1e-6)
    assert [out[0] for out in mul.outputs] == [steps[3].node, steps[4].node]
    x_grad = session.scenario.namespace["x"].grad
    assert mul.outputs[0][1].values == x_grad.tolist()
    assert steps[3].param == "x" and steps[3].grad_before is None
    assert steps[3].grad_after.values == session.scenario.namespace["x"].grad.tolist()
    assert "self·other" in mul.derivative


def test_slow_motion_backward_refused_returns_no_steps() -> None:
    session = opened("dag_toy", capture=False)
    event, steps = session.backward_steps()
    assert not event.ok and steps == ()
    session.forward()
    assert session.backward_steps()[0].ok
    b = session.scenario.namespace["b"]
    grad = b.grad.clone()
    event, steps = session.backward_steps()  # the graph was freed
    assert not event.ok and event.error.type == "RuntimeError" and steps == ()
    assert torch.equal(b.grad, grad)
    assert session.graph() is not None and session.graph().steps  # the first one's


# ----------------------------------------------------------------- size


def test_a_thousand_node_graph_extracts_fast(tmp_path: Path) -> None:
    path = deep_mlp(tmp_path, 200)
    session = opened(path)
    start = time.perf_counter()
    session.forward()
    forward_s = time.perf_counter() - start
    graph = session.graph()
    assert graph is not None and len(graph) == 1001
    start = time.perf_counter()
    session.backward()
    backward_s = time.perf_counter() - start
    flow = session.graph()
    assert flow is not None and len(flow.flow) == 1001
    # no timing assertion (shared CI machines vary); the figures are reported
    print(
        f"\n1001-node graph: extraction {graph.seconds * 1e3:.1f} ms, forward+capture "
        f"{forward_s * 1e3:.1f} ms, backward+flow {backward_s * 1e3:.1f} ms"
    )
    for k in range(0, 400, 2):
        assert node_named(graph, "AddmmBackward0", f"model.{k}")
        assert node_named(graph, "TBackward0", f"model.{k}")
        assert node_named(graph, "ReluBackward0", f"model.{k + 1}")
    assert len(graph.modules()) == 401
    assert math.isfinite(graph.seconds)


def test_extract_without_a_session() -> None:
    w = torch.tensor([1.0, -2.0], requires_grad=True)
    graph = extract(((w - 3) ** 2).sum(), {"w": w})
    assert chain(graph) == ["SumBackward0", "PowBackward0", "SubBackward0", "AccumulateGrad"]
    assert graph.nodes[graph.leaf("w") or ""].label == "w"
    assert not graph.captured
    no_grad = extract(torch.tensor(2.0))
    assert no_grad.root is None and len(no_grad) == 0 and no_grad.loss.values == 2.0


BIG_GRAD = """
import torch
torch.manual_seed(0)
w = torch.randn(40000, requires_grad=True)
v = torch.randn(40000, requires_grad=True)
optimizer = torch.optim.SGD([w, v], lr=0.1)

def forward():
    return ((w - 1) ** 2).mean() + (w * v).sum()
"""


def _summary_of(t: torch.Tensor) -> list[float]:
    t = t.detach()
    return [float(x) for x in (t.mean(), t.std(), t.min(), t.max(), t.norm())]


def test_big_gradients_in_the_flow_and_the_snapshot_are_torchs_numbers(tmp_path: Path) -> None:
    """A big gradient (summarized by the flow hooks once, shared between the nodes it
    passes and with the snapshot's .grad) has exactly torch's mean, std, min, max, norm,
    after a first backward (the incoming gradient stolen into .grad) and an accumulating
    one (a new .grad)."""
    path = tmp_path / "big.py"
    path.write_text(BIG_GRAD, encoding="utf-8")
    session = opened(path)
    ns = session.scenario.namespace
    for ops in (["f", "b"], ["f", "b"], ["z", "f", "b"]):
        for op in ops:
            assert session.perform(op)[0].ok
        graph = session.graph()
        assert graph is not None
        for name in ("w", "v"):
            leaf = graph.leaf(name)
            assert leaf is not None
            after = graph.flow[leaf].grad_after
            snap = session.snapshot().param(name)
            assert snap is not None and snap.grad is not None and after is not None
            assert snap.grad.summary is not None
            want = _summary_of(ns[name].grad)
            assert list(snap.grad.summary.as_dict().values()) == want, (ops, name)
            assert after == snap.grad, (ops, name)


BIG_LEAF = """
import torch
torch.manual_seed(0)
w = torch.randn(40000, requires_grad=True)
optimizer = torch.optim.Adam([w], lr=0.1)
calls = [0]

def forward():
    calls[0] += 1
    if calls[0] % 2 == 0:
        w.data.mul_(0.5)  # a write the version counter does not see
    return ((w - 1) ** 2).mean()
"""


def test_the_graph_takes_a_shown_parameters_view_instead_of_summarizing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A big parameter shown before a forward that left it as it was (its bits compared
    with the copy kept with its view) is not summarized again for the graph's leaf; one
    the forward wrote behind its version counter is (the test above checks the numbers)."""
    from optdbg.engine import graph as graph_module

    path = tmp_path / "leaf.py"
    path.write_text(BIG_LEAF, encoding="utf-8")
    session = opened(path)
    w = session.scenario.namespace["w"]
    summarized: list[int] = []

    def counted(t: torch.Tensor) -> torch.Tensor:
        summarized.append(t.data_ptr())
        return summary_stats(t)

    monkeypatch.setattr(graph_module, "summary_stats", counted)
    leaf_summaries = []
    for _ in range(4):  # forwards 1 and 3 leave w alone, 2 and 4 halve it behind the counter
        summarized.clear()
        for op in "fbsz":
            assert session.perform(op)[0].ok
            if op == "f":
                leaf_summaries.append(summarized.count(w.data_ptr()))
        assert session.snapshot().param("w") is not None  # shown: its view kept
    assert leaf_summaries[1:] == [1, 0, 1]


@pytest.mark.parametrize("capture", [True, False])
def test_a_big_parameters_view_from_the_graph_is_torchs_numbers(
    tmp_path: Path, capture: bool
) -> None:
    """The graph's view of a big leaf (taken after the forward's code, which writes it
    behind its version counter every other call) is the snapshot's too: exactly torch's
    numbers for the live tensor after every op."""
    path = tmp_path / "leaf.py"
    path.write_text(BIG_LEAF, encoding="utf-8")
    session = opened(path, capture)
    w = session.scenario.namespace["w"]
    for op in ["f", "b", "s", "z", "f", "b", "s", "f", "f", "b", "s", "z", "f"]:
        assert session.perform(op)[0].ok
        if not capture:
            session.graph()  # extracted lazily, outside an op
        snap = session.snapshot().param("w")
        assert snap is not None and snap.value.summary is not None
        assert list(snap.value.summary.as_dict().values()) == _summary_of(w), op
        graph = session.graph()
        if graph is not None and op in "fb":  # the graph shows w as the forward left it
            leaf = graph.leaf("w")
            assert leaf is not None and graph.nodes[leaf].value == snap.value, op
