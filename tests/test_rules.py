"""The update rules shown for each optimizer, checked against the optimizer's own result.

For each configuration a scenario runs two iterations in a Session; the test then takes the
numbers the rule shows (the update detail: before, grad, state) and applies the formula the
rule prints, by hand, to get the parameter after the step. That must match what the optimizer
computed (to float32 rounding: torch fuses the same arithmetic in another order), and the
shown "after" must equal, bit for bit, the parameter of a plain loop making the same calls.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from optdbg.engine import Session, fmt
from optdbg.engine.rules import describe
from optdbg.engine.session import UpdateDetail
from optdbg.engine.snapshot import TensorView

sys.path.insert(0, str(Path(__file__).parent))

from plain import PlainLoop, run_plain

SCENARIO = '''
"""Rules test: a 3-element parameter under {optimizer}."""
import torch

w = torch.tensor([1.5, -2.0, 0.25], requires_grad=True)
optimizer = torch.optim.{optimizer}

def forward():
    return (w ** 2 * torch.tensor([1.0, 3.0, -2.0])).sum() + w.prod()
'''


def values(v: TensorView | None) -> torch.Tensor:
    assert v is not None and v.values is not None
    return torch.tensor(v.values, dtype=torch.float64)


def detail_after(tmp_path: Path, optimizer: str) -> tuple[UpdateDetail, list[str], Path]:
    path = tmp_path / "rules_scenario.py"
    path.write_text(SCENARIO.format(optimizer=optimizer), encoding="utf-8")
    session = Session.open(path)
    for word in ["f", "b", "s", "z", "f", "b", "s"]:
        assert all(e.ok for e in session.perform(word))
    detail = session.update_detail("w")
    assert detail is not None
    return detail, describe(detail), path


def assert_plain_equal(path: Path, detail: UpdateDetail) -> None:
    loop = PlainLoop(run_plain(path))
    loop.ops("f b s z f b s")
    w = loop.optimizer.param_groups[0]["params"][0]
    assert w.tolist() == detail.after.values


def check(expected: torch.Tensor, detail: UpdateDetail) -> None:
    torch.testing.assert_close(expected, values(detail.after), rtol=2e-6, atol=1e-7)


def test_sgd_plain(tmp_path: Path) -> None:
    d, lines, path = detail_after(tmp_path, "SGD([w], lr=0.05)")
    assert lines[0] == "w ← w − lr·grad"
    check(values(d.before) - 0.05 * values(d.grad), d)
    assert_plain_equal(path, d)


def test_a_negative_factor_is_in_parentheses(tmp_path: Path) -> None:
    d, lines, _ = detail_after(tmp_path, "SGD([w], lr=0.05)")
    grad = fmt.tensor(d.grad, limit=6)
    if grad.startswith("-"):
        assert f"0.05·({grad})" in lines[1]
    else:
        assert f"0.05·{grad}" in lines[1] and "·(" not in lines[1]


def test_sgd_weight_decay_and_momentum(tmp_path: Path) -> None:
    d, lines, path = detail_after(
        tmp_path, "SGD([w], lr=0.05, momentum=0.9, weight_decay=0.1, dampening=0.2)"
    )
    assert lines[0] == "g = grad + weight_decay·w = grad + 0.1·w"
    assert lines[1] == "buf ← μ·buf + (1−0.2)·g"
    assert "w ← w − lr·buf" in lines
    g = values(d.grad) + 0.1 * values(d.before)
    buf = 0.9 * values(d.state_before["momentum_buffer"]) + (1 - 0.2) * g
    torch.testing.assert_close(buf, values(d.state_after["momentum_buffer"]), rtol=2e-6, atol=0)
    check(values(d.before) - 0.05 * buf, d)
    assert_plain_equal(path, d)


def test_sgd_nesterov(tmp_path: Path) -> None:
    d, lines, path = detail_after(tmp_path, "SGD([w], lr=0.05, momentum=0.9, nesterov=True)")
    assert "w ← w − lr·(grad + μ·buf)" in lines
    buf = values(d.state_after["momentum_buffer"])
    check(values(d.before) - 0.05 * (values(d.grad) + 0.9 * buf), d)
    assert_plain_equal(path, d)


def test_sgd_maximize_shows_plus(tmp_path: Path) -> None:
    d, lines, path = detail_after(tmp_path, "SGD([w], lr=0.05, maximize=True)")
    assert lines[0] == "w ← w + lr·grad"
    check(values(d.before) + 0.05 * values(d.grad), d)
    assert_plain_equal(path, d)


@pytest.mark.parametrize(
    ("optimizer", "decoupled"),
    [
        ("Adam([w], lr=0.01)", None),
        ("Adam([w], lr=0.01, weight_decay=0.1)", False),
        ("AdamW([w], lr=0.01, weight_decay=0.1)", True),
    ],
)
def test_adam_family(tmp_path: Path, optimizer: str, decoupled: bool | None) -> None:
    d, lines, path = detail_after(tmp_path, optimizer)
    assert lines[0].startswith("step t = 2   lr = 0.01   β1 = 0.9   β2 = 0.999")
    assert ("(decoupled weight decay)" in "\n".join(lines)) is bool(decoupled)
    assert ("(L2 weight decay)" in "\n".join(lines)) is (decoupled is False)
    b1, b2, eps, lr, t = 0.9, 0.999, 1e-8, 0.01, 2
    assert f"m/{1 - b1**t:.6g}" in "\n".join(lines)
    before = values(d.before)
    m, v = values(d.state_after["exp_avg"]), values(d.state_after["exp_avg_sq"])
    g = values(d.grad) + (0.1 * before if decoupled is False else 0)
    torch.testing.assert_close(
        m, b1 * values(d.state_before["exp_avg"]) + (1 - b1) * g, rtol=2e-6, atol=0
    )
    torch.testing.assert_close(
        v, b2 * values(d.state_before["exp_avg_sq"]) + (1 - b2) * g**2, rtol=2e-6, atol=0
    )
    start = before * (1 - lr * 0.1) if decoupled else before
    m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
    check(start - lr * m_hat / (v_hat.sqrt() + eps), d)
    assert_plain_equal(path, d)


@pytest.mark.parametrize(
    "optimizer",
    ["RMSprop([w], lr=0.01)", "RMSprop([w], lr=0.01, centered=True, momentum=0.5)"],
)
def test_rmsprop(tmp_path: Path, optimizer: str) -> None:
    d, lines, path = detail_after(tmp_path, optimizer)
    centered = "centered=True" in optimizer
    text = "\n".join(lines)
    assert lines[0] == "lr = 0.01   α = 0.99   ε = 1e-08"
    assert ("(centered: v − a²)" in text) is centered
    alpha, eps, lr = 0.99, 1e-8, 0.01
    g = values(d.grad)
    v = alpha * values(d.state_before["square_avg"]) + (1 - alpha) * g**2
    torch.testing.assert_close(v, values(d.state_after["square_avg"]), rtol=2e-6, atol=0)
    if centered:
        a = alpha * values(d.state_before["grad_avg"]) + (1 - alpha) * g
        denom = (v - a**2).sqrt() + eps
        buf = 0.5 * values(d.state_before["momentum_buffer"]) + g / denom
        assert "w ← w − lr·buf" in lines
        check(values(d.before) - lr * buf, d)
    else:
        assert "w ← w − lr·grad/(√v + ε)" in lines
        check(values(d.before) - lr * g / (v.sqrt() + eps), d)
    assert_plain_equal(path, d)


def test_other_optimizers_show_their_state(tmp_path: Path) -> None:
    d, lines, path = detail_after(tmp_path, "Adagrad([w], lr=0.1)")
    assert lines[0].startswith("Adagrad: w [")
    assert any(line.strip().startswith("sum = ") for line in lines)
    g = values(d.grad)
    state_sum = values(d.state_before["sum"]) + g**2
    torch.testing.assert_close(state_sum, values(d.state_after["sum"]), rtol=2e-6, atol=0)
    check(values(d.before) - 0.1 * g / (state_sum.sqrt() + 1e-10), d)
    assert lines[-1].startswith("Δw = ")
    assert_plain_equal(path, d)
