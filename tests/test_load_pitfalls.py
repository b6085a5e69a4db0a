"""Load-time pitfalls: the classic mistakes in building the optimizer get one clear ScenarioError.

Each names the file and the line of the mistake, quotes that line, says what was expected
(the optimizer built from leaf tensors, each in one group) and how to fix it, and the
`optdbg run` CLI prints it and exits 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from optdbg.engine import ScenarioError, load

OPTDBG = Path(sys.executable).parent / "optdbg"

HEAD = "import torch\nt = torch.tensor([1.0, 2.0], requires_grad=True)\n"
FORWARD = "\ndef forward():\n    return (t ** 2).sum()\n"

CASES = {
    "tensor-instead-of-list": (
        "optimizer = torch.optim.SGD(t, lr=0.1)",
        "should be an iterable of Tensors or dicts",
        "torch.optim.SGD([t], lr=0.1), not the tensor itself",
    ),
    "empty-list": (
        "optimizer = torch.optim.SGD([], lr=0.1)",
        "optimizer got an empty parameter list",
        "at least one tensor with requires_grad=True",
    ),
    "consumed-generator": (
        "m = torch.nn.Linear(2, 1)\n"
        "ps = m.parameters()\n"
        "n = sum(p.numel() for p in ps)\n"
        "optimizer = torch.optim.SGD(ps, lr=0.1)",
        "optimizer got an empty parameter list",
        "empty once consumed",
    ),
    "non-leaf": (
        "w = t * 2\noptimizer = torch.optim.SGD([w], lr=0.1)",
        "can't optimize a non-leaf Tensor",
        "create it with requires_grad=True directly",
    ),
    "two-groups": (
        'optimizer = torch.optim.SGD([{"params": [t]}, {"params": [t], "lr": 0.01}], lr=0.1)',
        "some parameters appear in more than one parameter group",
        "exactly one param group",
    ),
    "dict-not-in-a-list": (
        'optimizer = torch.optim.SGD({"params": t}, lr=0.1)',
        "optimizer can only optimize Tensors",
        "a list of dicts",
    ),
    "no-params": (
        "optimizer = torch.optim.SGD(lr=0.1)",
        "missing 1 required positional argument: 'params'",
        "pass the parameters first",
    ),
    "negative-lr": (
        "optimizer = torch.optim.SGD([t], lr=-1)",
        "Invalid learning rate: -1",
        "correct the value",
    ),
}


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "pitfall.py"
    path.write_text(HEAD + body + "\n" + FORWARD, encoding="utf-8")
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_optimizer_mistake_is_one_clear_error(tmp_path: Path, case: str) -> None:
    body, problem, fix = CASES[case]
    path = write(tmp_path, body)
    line = 2 + len(body.splitlines())  # the optimizer line is the body's last
    with pytest.raises(ScenarioError) as info:
        load(path)
    error = info.value
    assert error.file == str(path) and error.line == line
    assert problem in error.problem
    assert error.source_line is not None and error.source_line.startswith("optimizer = ")
    if case != "negative-lr":
        assert "leaf tensors" in error.expected and "one group" in error.expected
    else:
        assert "lr >= 0" in error.expected
    assert fix in error.fix
    text = str(error)
    assert text.startswith(f"{path}:{line}: ")
    assert "\n  expected: " in text and "\n  fix: " in text
    assert "Traceback" not in text


def test_cli_prints_the_error_and_exits_2(tmp_path: Path) -> None:
    body, problem, fix = CASES["two-groups"]
    path = write(tmp_path, body)
    result = subprocess.run(
        [str(OPTDBG), "run", str(path)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert result.returncode == 2
    assert f"{path}:3: " in result.stderr and problem in result.stderr and fix in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unrelated_error_keeps_the_generic_advice(tmp_path: Path) -> None:
    path = write(tmp_path, 'raise ValueError("Invalid input")\noptimizer = None')
    with pytest.raises(ScenarioError) as info:
        load(path)
    assert info.value.expected == "the scenario file runs to the end without raising"
    assert "python" in info.value.fix
