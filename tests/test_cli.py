"""The real `optdbg` console script, run in a subprocess: --list, `run`, JSON Lines, exits."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from optdbg.engine import builtin_names
from optdbg.engine.builtins import builtin_title

sys.path.insert(0, str(Path(__file__).parent))

from plain import PlainLoop

OPTDBG = Path(sys.executable).parent / "optdbg"


def optdbg(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    assert OPTDBG.exists(), f"the console script is not installed at {OPTDBG}"
    return subprocess.run(
        [str(OPTDBG), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )


def records(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith("{") for line in lines), result.stdout
    return [json.loads(line) for line in lines]


def params_of(loop: PlainLoop) -> list[torch.Tensor]:
    return loop.params()


def same(a: Any, b: Any) -> bool:
    """Equal lists of floats, NaN equal to NaN."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


# ----------------------------------------------------------------- listing


def test_list_shows_every_builtin_with_its_title() -> None:
    result = optdbg("--list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(builtin_names())
    for line, name in zip(lines, builtin_names(), strict=True):
        title, _ = builtin_title(name)
        assert title
        assert line.split()[0] == name
        assert line.endswith(title)


# ----------------------------------------------------------------- JSON Lines


def test_default_run_gives_the_documented_records() -> None:
    rows = records(optdbg("run", "quadratic_bowl", "--json"))
    assert [r["index"] for r in rows] == [0, 1, 2, 3]
    assert [r["op"] for r in rows] == ["zero_grad", "forward", "backward", "step"]
    assert rows[0]["loss"] is None and rows[0]["grads"] == {"t": None}
    assert rows[1]["loss"] == 201.0 and rows[1]["grads"] == {"t": None}
    assert rows[2]["grads"] == {"t": [14.0, 24.0]}
    assert rows[3] == {
        "index": 3,
        "op": "step",
        "loss": 201.0,
        "params": {"t": [8.600000381469727, 7.599999904632568]},
        "grads": {"t": [14.0, 24.0]},
        "warnings": [],
        "error": None,
    }
    for r in rows:
        assert list(r) == ["index", "op", "loss", "params", "grads", "warnings", "error"]


@pytest.mark.parametrize("name", builtin_names())
def test_backward_twice_doubles_every_grad(name: str) -> None:
    rows = records(optdbg("run", name, "--ops", "f b f b", "--json"))
    assert [r["op"] for r in rows] == ["forward", "backward", "forward", "backward"]
    assert all(r["error"] is None for r in rows)
    first, second = rows[1]["grads"], rows[3]["grads"]

    loop = PlainLoop.load(name)
    small = {n for n, g in first.items() if isinstance(g, float | list)}  # whole in JSON
    names = [n for n in first if n in small]
    loop.ops("f b")
    once = [p.grad.clone() for n, p in zip(first, params_of(loop), strict=True) if n in small]
    assert [first[n] for n in names] == [g.tolist() for g in once]
    loop.ops("f b")
    twice = [p.grad for n, p in zip(first, params_of(loop), strict=True) if n in small]
    assert [second[n] for n in names] == [g.tolist() for g in twice]
    kept = [p for n, p in zip(first, params_of(loop), strict=True) if n in small]
    assert [rows[3]["params"][n] for n in names] == [p.tolist() for p in kept]
    assert rows[3]["loss"] == loop.loss.item()

    data = loop.ns.get("data")
    if data is None or len(data) == 1:  # the same batch twice: the grad doubles exactly
        for n, g in zip(names, once, strict=True):
            assert torch.equal(torch.tensor(second[n], dtype=g.dtype), 2 * g), n
    else:  # the second forward drew another batch: once + the new batch's gradient
        for n, g, g2 in zip(names, once, twice, strict=True):
            assert not torch.allclose(g2, 2 * g), n

    assert rows[0]["warnings"] == rows[1]["warnings"] == rows[2]["warnings"] == []
    warnings = rows[3]["warnings"]
    if "f b f b" in loop.ns.get("optdbg_config", {}).get("iteration", ""):
        assert warnings == []  # the iteration pattern accumulates on purpose
        return
    assert len(warnings) == len(first)
    for w in warnings:
        assert set(w) == {"code", "message"}
        assert w["code"] == "grad-accumulated"
        assert "2 backward passes" in w["message"] and "zero_grad" in w["message"]
    assert sorted(w["message"].split(".grad")[0] for w in warnings) == sorted(first)


def test_refused_backward_is_recorded_and_the_run_goes_on() -> None:
    ops = "forward b backward iteration next"  # long and short words alike
    rows = records(optdbg("run", "mlp_sequential", "--ops", ops, "--json"))
    assert [r["op"] for r in rows] == [
        "forward",
        "backward",
        "backward",
        "forward",
        "backward",
        "step",
        "zero_grad",
        "forward",
    ]
    error = rows[2]["error"]
    assert error["type"] == "RuntimeError"
    assert "backward through the graph a second time" in error["message"]
    assert error["explanation"]
    assert rows[2]["grads"] == rows[1]["grads"]  # the refused op changed nothing
    assert all(r["error"] is None for i, r in enumerate(rows) if i != 2)
    assert [w["code"] for w in rows[4]["warnings"]] == ["grad-accumulated"] * 4

    loop = PlainLoop.load("mlp_sequential")
    loop.ops("f b f b s z f")
    params = rows[-1]["params"]
    assert [params[n] for n in params] == [p.tolist() for p in params_of(loop)]
    assert rows[-1]["grads"] == dict.fromkeys(params)
    assert rows[-1]["loss"] == loop.loss.item()


def test_big_tensors_are_summaries(tmp_path: Path) -> None:
    path = tmp_path / "big.py"
    path.write_text(
        "import torch\n"
        "w = torch.randn(10, 10, requires_grad=True)\n"
        "v = torch.randn(8, 8, requires_grad=True)\n"
        "optimizer = torch.optim.SGD([w, v], lr=0.1)\n"
        "def forward():\n"
        "    return (w ** 2).sum() + (v ** 2).sum()\n",
        encoding="utf-8",
    )
    rows = records(optdbg("run", str(path), "--ops", "f b s", "--json"))
    loop = PlainLoop.load(path)
    w, v = loop.ns["w"], loop.ns["v"]
    for k, word in enumerate(["f", "b", "s"]):
        loop.op(word)
        row = rows[k]
        assert row["params"]["v"] == v.tolist()  # 64 elements: in full
        assert row["grads"]["v"] == (None if v.grad is None else v.grad.tolist())
        for got, t in ((row["params"]["w"], w), (row["grads"]["w"], w.grad)):
            if t is None:
                assert got is None
                continue
            t = t.detach()
            assert got == {
                "shape": [10, 10],
                "mean": t.mean().item(),
                "std": t.std().item(),
                "min": t.min().item(),
                "max": t.max().item(),
                "norm": t.norm().item(),
            }


def test_non_finite_numbers_round_trip() -> None:
    result = optdbg("run", "quadratic_bowl_lr10", "--repeat", "40", "--json")
    rows = records(result)
    assert len(rows) == 160
    assert "Infinity" in result.stdout and "NaN" in result.stdout
    losses = [r["loss"] for r in rows if r["op"] == "forward"]
    assert math.isinf(losses[15]) and all(math.isfinite(x) for x in losses[:15])

    loop = PlainLoop.load("quadratic_bowl_lr10")
    loop.ops("z f b s", repeat=40)
    t = loop.ns["t"]
    assert same(rows[-1]["params"]["t"], t.tolist())
    assert same(rows[-1]["grads"]["t"], t.grad.tolist())
    assert any(math.isnan(x) for x in rows[-1]["params"]["t"])


# ----------------------------------------------------------------- readable output


def test_readable_trace_has_one_line_per_op() -> None:
    result = optdbg("run", "quadratic_bowl", "--ops", "i f b f b s b")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    op_lines = [line for line in lines if not line.startswith("        ")]
    assert len(op_lines) == 10
    ops = ["forward", "backward", "step", "zero_grad", "forward", "backward"]
    ops += ["forward", "backward", "step", "backward"]
    for k, (line, op) in enumerate(zip(op_lines, ops, strict=True)):
        assert line.split()[:2] == [str(k), op] or line.split()[:3] == ["!", str(k), op], line
    assert op_lines[0].split(maxsplit=2)[2] == "loss = 201"
    assert op_lines[9].startswith("!") and "RuntimeError" in op_lines[9]
    extra = [line for line in lines if line.startswith("        ")]
    assert len(extra) == 3
    assert extra[0].strip().startswith("warning [grad-accumulated]")
    assert lines.index(extra[0]) == lines.index(op_lines[7]) + 1
    assert extra[1].strip().startswith("warning [backward-twice]")
    assert lines.index(extra[1]) == lines.index(op_lines[9]) + 1
    assert lines.index(extra[2]) == lines.index(op_lines[9]) + 2  # the error's explanation


def test_quiet_prints_one_line() -> None:
    result = optdbg("run", "quadratic_bowl", "--ops", "f b f b s b", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    line = result.stdout.strip()
    assert line.startswith("quadratic_bowl: 6 ops, 1 steps")
    assert "errors 1" in line and "grad-accumulated" in line


# ----------------------------------------------------------------- failures


def test_broken_scenario_exits_2_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("import torch\n\nscale = 1 / 0\n", encoding="utf-8")
    result = optdbg("run", str(path), "--json")
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"{path}:3" in result.stderr and "ZeroDivisionError" in result.stderr
    assert "expected:" in result.stderr and "fix:" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.py"
    result = optdbg("run", str(path))
    assert result.returncode == 2
    assert str(path) in result.stderr and "no such file" in result.stderr
    assert "quadratic_bowl" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["run", "quadratic_bowl", "--ops", "f b jump"], ["jump"]),
        (["run", "quadratic_bowl", "--repeat", "0"], ["--repeat"]),
        (["run", "quadratic_bowl", "--ops", "  "], ["--ops"]),
        (["run"], ["scenario"]),
        (["--no-such-flag"], ["--no-such-flag"]),
    ],
    ids=["unknown-op", "repeat-0", "empty-ops", "no-scenario", "unknown-flag"],
)
def test_bad_arguments_exit_2(args: list[str], words: list[str]) -> None:
    result = optdbg(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    for word in words:
        assert word in result.stderr
    assert "Traceback" not in result.stderr


def test_help_and_version() -> None:
    result = optdbg("--help")
    assert result.returncode == 0 and "usage: optdbg" in result.stdout
    assert "run SCENARIO" in result.stdout and "--list" in result.stdout
    result = optdbg("run", "--help")
    assert result.returncode == 0
    assert "--ops" in result.stdout and "--repeat" in result.stdout and "--json" in result.stdout
    result = optdbg("--version")
    assert result.returncode == 0 and result.stdout.strip() == "optdbg 0.1.0"
