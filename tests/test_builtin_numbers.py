"""The numbers shared/SCENARIOS.md states, checked with a plain PyTorch loop."""

import itertools
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from plain import SCENARIOS_DIR, PlainLoop, assert_the_lectures_losses, run_plain

BUILTINS = [
    "dag_toy",
    "quadratic_bowl",
    "quadratic_bowl_lr10",
    "quadratic_bowl_lr025",
    "log_xy",
    "polynomial_sin",
    "linear_regression",
    "linear_regression_minibatch",
    "mlp_sequential",
    "classifier_adam",
    "lr_schedule",
    "table_split",
    "polynomial_manual",
    "classifier_eval",
    "grad_accumulation",
]


def f32(value: float) -> float:
    """The float32 value torch holds for a Python float."""
    return torch.tensor(value, dtype=torch.float32).item()


# --- the contract, for every built-in ---------------------------------------


@pytest.mark.parametrize("name", BUILTINS)
def test_docstring_title_and_description(name: str) -> None:
    ns = run_plain(name)
    doc = ns.get("__doc__")
    assert isinstance(doc, str)
    lines = doc.strip("\n").split("\n")
    assert 0 < len(lines[0]) < 60
    assert lines[1] == ""
    assert 3 <= len(lines[2:]) <= 8
    assert all(line.strip() for line in lines[2:])
    assert doc.isascii()
    source = (SCENARIOS_DIR / f"{name}.py").read_text(encoding="utf-8")
    assert all(len(line) <= 76 for line in doc.split("\n"))
    assert source.isascii()


@pytest.mark.parametrize("name", BUILTINS)
def test_follows_the_contract(name: str) -> None:
    ns = run_plain(name)
    loop = PlainLoop(ns)
    optimizer = ns.get("optimizer")
    if optimizer is None:  # the manual update form
        assert callable(ns["step"])
    else:
        assert isinstance(optimizer, torch.optim.Optimizer)
    if "forward" in ns:
        assert callable(ns["forward"])
    else:
        assert callable(ns["model"])  # an nn.Module, or a function of the batch
        assert callable(ns["loss_fn"])
        assert ns["data"] is not None
    # every optimizer parameter is a named leaf: a global tensor or a model parameter
    named = {id(v) for v in ns.values() if isinstance(v, torch.Tensor)}
    if isinstance(ns.get("model"), torch.nn.Module):
        named |= {id(p) for p in ns["model"].parameters()}
    params = loop.params()
    assert params
    for p in params:
        assert p.is_leaf and p.requires_grad
        assert id(p) in named
    loss = loop.forward()
    assert isinstance(loss, torch.Tensor) and loss.dim() == 0
    assert loss.requires_grad and math.isfinite(loss.item())


@pytest.mark.parametrize("name", BUILTINS)
def test_loading_is_deterministic(name: str) -> None:
    first = PlainLoop(run_plain(name))
    second = PlainLoop.load(name)
    for loop in (first, second):
        torch.manual_seed(1)  # dropout draws from the global generator during the ops
        loop.ops("f b s z", repeat=2)
    p1, p2 = first.params(), second.params()
    assert all(torch.equal(a, b) for a, b in zip(p1, p2, strict=True))
    assert torch.equal(first.loss, second.loss)


# --- 1. dag_toy ---------------------------------------------------------------


def test_dag_toy_gradient_and_one_step() -> None:
    loop = PlainLoop.load("dag_toy")
    b = loop.ns["b"]
    assert [p for g in loop.optimizer.param_groups for p in g["params"]] == [b]
    loop.ops("f")
    assert loop.loss.item() == 3.0  # 2 * (3 - 4) + 5
    loop.ops("b")
    assert b.grad.item() == -2.0
    loop.ops("s")
    assert b.item() == f32(3.8)


def test_dag_toy_backward_twice_accumulates() -> None:
    loop = PlainLoop.load("dag_toy")
    loop.ops("f b f b")  # two backward passes without zero_grad
    assert loop.ns["b"].grad.item() == -4.0
    # the graph saved the wrapped 2 for MulBackward0: a second backward on it fails
    loop.ops("f b")
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loop.ops("b")


def test_dag_toy_ten_iterations_with_and_without_zero_grad() -> None:
    loop = PlainLoop.load("dag_toy")
    loop.ops("f b s z", repeat=10)
    assert loop.ns["b"].item() == pytest.approx(2.0, abs=1e-6)
    loop = PlainLoop.load("dag_toy")
    loop.ops("f b s", repeat=10)
    assert loop.ns["b"].item() == -7.0
    assert loop.ns["b"].grad.item() == -20.0


# --- 2. quadratic bowl --------------------------------------------------------


def test_quadratic_bowl_first_gradient_and_step() -> None:
    loop = PlainLoop.load("quadratic_bowl")
    t = loop.ns["t"]
    loop.ops("f z b")
    assert loop.loss.item() == 201.0
    assert t.grad.tolist() == [14.0, 24.0]
    loop.ops("s")
    assert t.tolist() == [f32(8.6), f32(7.6)]
    assert t.tolist() == [8.600000381469727, 7.599999904632568]


def test_quadratic_bowl_losses_approach_eight() -> None:
    loop = PlainLoop.load("quadratic_bowl")
    losses = []
    for _ in range(20):
        loop.ops("f z b s")
        losses.append(loop.loss.item())
    assert losses[:3] == [201.0, pytest.approx(131.52, abs=1e-4), pytest.approx(87.0528, abs=1e-3)]
    assert all(a > b for a, b in itertools.pairwise(losses))
    assert 8.0 < losses[-1] < 8.05
    assert loop.ns["t"].tolist() == pytest.approx([3.0, -2.0], abs=0.2)


def test_quadratic_bowl_lr10_diverges_to_inf() -> None:
    loop = PlainLoop.load("quadratic_bowl_lr10")
    assert loop.optimizer.param_groups[0]["lr"] == 10
    losses = []
    for _ in range(20):
        loop.ops("f z b s")
        losses.append(loop.loss.item())
    first_inf = next(i for i, loss in enumerate(losses, start=1) if math.isinf(loss))
    assert first_inf == 16
    assert all(math.isfinite(loss) for loss in losses[: first_inf - 1])
    assert all(a < b for a, b in itertools.pairwise(losses[:first_inf]))


def test_quadratic_bowl_lr025_converges_within_17_iterations() -> None:
    loop = PlainLoop.load("quadratic_bowl_lr025")
    t = loop.ns["t"]
    target = torch.tensor([3.0, -2.0])
    loop.ops("f z b s", repeat=16)
    assert (t - target).abs().max().item() > 1e-4
    loop.ops("f z b s")
    assert (t - target).abs().max().item() < 1e-4
    assert loop.forward().item() == 8.0  # the float32 loss already reads 8
    loop.ops("z b s")
    loop.ops("f z b s", repeat=10)  # exactly (3, -2) once float32 rounds there (28)
    assert loop.ns["t"].tolist() == [3.0, -2.0]


def test_bowl_variants_differ_only_in_lr_and_docstring() -> None:
    def code(name: str) -> str:
        source = (SCENARIOS_DIR / f"{name}.py").read_text(encoding="utf-8")
        return source.split('"""', 2)[2]

    base = code("quadratic_bowl")
    assert code("quadratic_bowl_lr10") == base.replace("lr = 0.1\n", "lr = 10\n")
    assert code("quadratic_bowl_lr025") == base.replace("lr = 0.1\n", "lr = 0.25\n")


def test_passing_the_tensor_itself_to_sgd_raises_type_error(tmp_path: Path) -> None:
    path = tmp_path / "bowl_mistake.py"
    source = (SCENARIOS_DIR / "quadratic_bowl.py").read_text(encoding="utf-8")
    assert "SGD([t], lr=lr)" in source
    path.write_text(source.replace("SGD([t], lr=lr)", "SGD(t, lr=lr)"), encoding="utf-8")
    with pytest.raises(TypeError):
        run_plain(path)


# --- 3. log_xy ----------------------------------------------------------------


def test_log_xy_graph_and_gradients() -> None:
    loop = PlainLoop.load("log_xy")
    x, y = loop.ns["x"], loop.ns["y"]
    assert torch.equal(x.detach(), torch.linspace(2, 1, 11))
    assert torch.equal(y.detach(), torch.linspace(1, 2, 11))
    loss = loop.forward()
    sum_node = loss.grad_fn
    assert sum_node.name() == "SumBackward0"
    (log_node, _), *rest = sum_node.next_functions
    assert not rest and log_node.name() == "LogBackward0"
    (mul_node, _), *rest = log_node.next_functions
    assert not rest and mul_node.name() == "MulBackward0"
    leaves = [fn for fn, _ in mul_node.next_functions]
    assert [fn.name() for fn in leaves] == ["torch::autograd::AccumulateGrad"] * 2
    assert leaves[0].variable is x and leaves[1].variable is y
    loop.ops("b")
    torch.testing.assert_close(x.grad, 1 / x.detach())
    torch.testing.assert_close(y.grad, 1 / y.detach())


# --- 4. polynomial_sin ----------------------------------------------------------


def test_polynomial_sin_after_2000_iterations() -> None:
    loop = PlainLoop.load("polynomial_sin")
    ns = loop.ns
    assert ns["x"].shape == (2000,)
    assert [ns[k].dim() for k in "abcd"] == [0, 0, 0, 0]
    loop.ops("f b s z", repeat=2000)
    a, b, c, d = (ns[k].item() for k in "abcd")
    # plain loop, seed 0: a=0.0586, b=0.8372, c=-0.0101, d=-0.0906, loss 12.27
    assert b == pytest.approx(0.84, abs=0.01)
    assert d == pytest.approx(-0.09, abs=0.005)
    assert abs(a) < 0.1 and abs(c) < 0.05
    assert loop.forward().item() == pytest.approx(12.27, abs=0.5)


# --- 5. linear regression ---------------------------------------------------------


def test_linear_regression_data_are_the_lectures() -> None:
    """SCENARIOS.md 11: make_regression(10000, 20, 4, bias 3, noise 1, random_state=1234)
    with a column of ones in front, float64; the facts a plain loop gives on them."""
    loop = PlainLoop.load("linear_regression")
    X, y, w = loop.ns["X"], loop.ns["y"], loop.ns["w"]
    assert X.shape == (10000, 21) and y.shape == (10000,)
    assert X.dtype == y.dtype == w.dtype == torch.float64
    assert torch.equal(X[:, 0], torch.ones(10000, dtype=torch.float64))
    assert torch.equal(w.detach(), torch.zeros(21, dtype=torch.float64))
    # the loss at zeros, summed as NumPy sums (pairwise): the lecture's number, exactly
    assert float(np.sum((X.numpy() @ np.zeros(21) - y.numpy()) ** 2)) == 59888326.630047254
    # the least-squares minimum; solvers differ by a few ulps (threaded LAPACK varies)
    solution = torch.linalg.solve(X.T @ X, X.T @ y)
    least = ((X @ solution - y) ** 2).sum().item()
    assert least == pytest.approx(10105.859508383426, rel=1e-14, abs=0)
    losses = []
    for _ in range(30):
        loop.ops("z f b s")
        losses.append(loop.loss.item())
    # torch's own sum of the same squares differs from NumPy's in the last bit, and how
    # depends on the CPU kernel (see plain.assert_the_lectures_losses)
    assert_the_lectures_losses(losses)
    assert all(a > b for a, b in itertools.pairwise(losses))


def test_linear_regression_minibatch_follows_the_lecture_loop() -> None:
    """One shuffle with default_rng(1234), the same batch order every epoch."""
    loop = PlainLoop.load("linear_regression_minibatch")
    ns = loop.ns
    full = PlainLoop.load("linear_regression")
    X, y = full.ns["X"], full.ns["y"]
    assert torch.equal(ns["X"], X) and torch.equal(ns["y"], y)
    order = np.arange(10000)
    np.random.default_rng(1234).shuffle(order)
    assert ns["batch_size"] == 100 and len(ns["data"]) == 100
    w = torch.zeros(21, dtype=torch.float64, requires_grad=True)
    for epoch in range(2):
        for i in range(0, 10000, 100):
            rows = order[i : i + 100]
            loss = ((X[rows] @ w - y[rows]) ** 2).sum()
            loss.backward()
            with torch.no_grad():
                w.add_(w.grad, alpha=-ns["lr"])  # what SGD without momentum computes
            w.grad = None
            loop.ops("f b s z")
            assert torch.equal(loop.ns["w"].detach(), w.detach()), (epoch, i)
    assert loop.epoch == 2
    assert ns["evaluate"]() == {"loss": ((X @ w - y) ** 2).sum().item()}


# --- 6. mlp_sequential --------------------------------------------------------------


def graph_names(loss: torch.Tensor) -> set[str]:
    names, stack, seen = set(), [loss.grad_fn], set()
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        names.add(fn.name())
        stack.extend(next_fn for next_fn, _ in fn.next_functions)
    return names


def test_mlp_sequential_graph_and_training() -> None:
    loop = PlainLoop.load("mlp_sequential")
    model = loop.ns["model"]
    assert [n for n, _ in model.named_parameters()] == [
        "0.weight",
        "0.bias",
        "2.weight",
        "2.bias",
    ]
    opt_params = [p for g in loop.optimizer.param_groups for p in g["params"]]
    assert opt_params == list(model.parameters())
    loss = loop.forward()
    names = graph_names(loss)
    assert {"AddmmBackward0", "SigmoidBackward0", "TBackward0", "MseLossBackward0"} <= names
    loop.ops("b s z")
    first = loss.item()
    loop.ops("f b s z", repeat=99)
    assert (loop.epoch, loop.batch) == (100, 1)  # one full batch per epoch
    # plain loop: 0.503 -> 0.251 after 100 iterations
    assert loop.loss.item() < 0.6 * first


# --- 7. classifier_adam ----------------------------------------------------------------


def test_classifier_adam_loss_falls_and_adam_state() -> None:
    loop = PlainLoop.load("classifier_adam")
    assert isinstance(loop.optimizer, torch.optim.Adam)
    data = loop.ns["data"]
    assert data.batch_size == 32 and len(data.dataset) == 300 and len(data) == 10
    epoch_losses: dict[int, list[float]] = {}
    for _ in range(50):
        loop.ops("f b s z")
        epoch_losses.setdefault(loop.epoch, []).append(loop.loss.item())
    assert sorted(epoch_losses) == [1, 2, 3, 4, 5]
    mean = {e: sum(v) / len(v) for e, v in epoch_losses.items()}
    # plain loop: epoch means 0.88, 0.52, 0.31, 0.19, 0.15
    assert mean[5] < 0.5 * mean[1]
    state = loop.optimizer.state[next(loop.ns["model"].parameters())]
    assert {"step", "exp_avg", "exp_avg_sq"} <= set(state)
    assert state["step"].item() == 50


# --- 8. lr_schedule ---------------------------------------------------------------------


def test_lr_schedule_decays_each_step() -> None:
    loop = PlainLoop.load("lr_schedule")
    assert isinstance(loop.ns["scheduler"], torch.optim.lr_scheduler.ExponentialLR)
    group = loop.optimizer.param_groups[0]
    assert group["lr"] == 0.1
    lrs = []
    for _ in range(3):
        loop.ops("f b s z")
        lrs.append(group["lr"])
    assert lrs == pytest.approx([0.1 * 0.9, 0.1 * 0.9**2, 0.1 * 0.9**3], rel=1e-12)
    # the first step still used lr 0.1: t moved from (10, 10) to (8.6, 7.6) first
    loop = PlainLoop.load("lr_schedule")
    loop.ops("f b s")
    assert loop.ns["t"].tolist() == [f32(8.6), f32(7.6)]
