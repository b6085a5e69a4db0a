"""`--set`, `optdbg compare` and lockstep variants: each variant equals its solo plain loop."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from optdbg.engine import ScenarioError, Session
from optdbg.engine.compare import Comparison, make_variants
from optdbg.engine.overrides import OverrideError, parse_value, parse_values

sys.path.insert(0, str(Path(__file__).parent))

from plain import PlainLoop, scenario_path
from test_cli import optdbg, records

NOISY = '''"""Noisy: the forward draws from torch's global RNG."""
import torch

lr = 0.1
scale: float = 1.0
w = torch.randn(3, requires_grad=True)
optimizer = torch.optim.SGD([w], lr=lr)


def forward():
    x = torch.randn(3) * scale
    return ((w * x).sum() - 1) ** 2
'''


def plain_loop(source: str, path: Path) -> PlainLoop:
    """The scenario's source as given, run like optdbg loads it: seeds, then exec."""
    import random

    import numpy as np

    namespace: dict[str, Any] = {"__name__": "__optdbg_scenario__", "__file__": str(path)}
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    exec(compile(source, str(path), "exec"), namespace)
    return PlainLoop(namespace)


def bits(t: torch.Tensor | None) -> Any:
    return None if t is None else t.detach().clone().view(torch.int32).tolist()


# ----------------------------------------------------------------- --set


def test_values_are_split_on_top_level_commas_only() -> None:
    assert parse_values("0.1,10,0.25") == [0.1, 10, 0.25]
    assert parse_values("(0.9, 0.99),(0.8,0.9)") == [(0.9, 0.99), (0.8, 0.9)]
    assert parse_values("'a,b', 3") == ["a,b", 3]
    assert parse_value("1e-3") == 1e-3
    for bad in ("abc", "1 +", "torch.ones(2)"):
        with pytest.raises(OverrideError, match="not a Python literal"):
            parse_value(bad)
    with pytest.raises(OverrideError, match="comma-separated"):
        parse_values("0.1,,2")


def test_set_replaces_the_literal_and_keeps_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "noisy.py"
    path.write_text(NOISY + "\nboom = 1 / (scale - 2.0)\n", encoding="utf-8")
    session = Session.open(path, overrides={"lr": 10, "scale": 0.5})
    assert session.optimizer.param_groups[0]["lr"] == 10.0
    assert isinstance(session.scenario.namespace["lr"], float)  # 0.1 is a float: 10 -> 10.0
    assert session.scenario.overrides == {"lr": 10, "scale": 0.5}
    with pytest.raises(ScenarioError) as err:
        Session.open(path, overrides={"scale": 2})
    assert err.value.line == NOISY.count("\n") + 2  # the line in the file, not shifted
    assert "ZeroDivisionError" in str(err.value)


def test_set_of_an_unknown_name_lists_the_names_that_can_be_set(tmp_path: Path) -> None:
    path = tmp_path / "noisy.py"
    path.write_text(NOISY, encoding="utf-8")
    with pytest.raises(OverrideError) as err:
        Session.open(path, overrides={"momentum": 0.9})
    assert "momentum" in str(err.value) and "lr, scale" in str(err.value)
    with pytest.raises(OverrideError, match="can be set are: lr, scale"):
        Session.open(path, overrides={"w": 1.0})  # w is not a literal assignment


@pytest.mark.parametrize(
    "args",
    [
        ("run", "quadratic_bowl", "--set", "momentum=0.9"),
        ("run", "quadratic_bowl", "--set", "lr=fast"),
        ("run", "quadratic_bowl", "--set", "lr"),
        ("compare", "quadratic_bowl", "--set", "lx=0.1,0.2", "--table"),
        ("compare", "quadratic_bowl", "--set", "lr=0.1", "--set", "lr=0.2", "--table"),
        ("quadratic_bowl", "--set", "momentum=0.9"),  # the TUI: refused before it opens
    ],
)
def test_bad_set_is_an_argument_error(
    args: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    from optdbg.tui.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--set" in err or "literal" in err


def test_run_with_set_equals_the_plain_loop_with_that_literal() -> None:
    path = scenario_path("quadratic_bowl")
    source = path.read_text(encoding="utf-8")
    assert "lr = 0.1\n" in source
    loop = plain_loop(source.replace("lr = 0.1\n", "lr = 0.25\n"), path)
    loop.ops("f z b s", 3)
    got = records(
        optdbg(
            "run",
            "quadratic_bowl",
            "--set",
            "lr=0.25",
            "--ops",
            "f z b s",
            "--repeat",
            "3",
            "--json",
        )
    )
    assert got[-1]["params"]["t"] == loop.ns["t"].tolist()


# ----------------------------------------------------------------- variants


def test_variants_cross_or_zip_the_settings() -> None:
    product = make_variants(["a.py", "b.py"], [("lr", [1, 2]), ("m", [0, 0.9])])
    assert len(product) == 8
    assert product[0].label == "a lr=1, m=0" and product[-1].label == "b lr=2, m=0.9"
    zipped = make_variants(["a.py"], [("lr", [1, 2]), ("m", [0, 0.9])], zipped=True)
    assert [v.overrides for v in zipped] == [{"lr": 1, "m": 0}, {"lr": 2, "m": 0.9}]
    assert [v.label for v in zipped] == ["lr=1, m=0", "lr=2, m=0.9"]
    with pytest.raises(OverrideError, match="as many"):
        make_variants(["a.py"], [("lr", [1, 2]), ("m", [0])], zipped=True)


def test_each_variant_equals_its_solo_plain_loop_bit_for_bit(tmp_path: Path) -> None:
    """The forward draws random numbers: variants interleaved in one process must still
    each see exactly the stream of its own solo run."""
    path = tmp_path / "noisy.py"
    path.write_text(NOISY, encoding="utf-8")
    variants = make_variants([str(path)], [("lr", [0.1, 0.05, 0.2])])
    comparison = Comparison.open(variants)
    for _ in range(4):
        for word in ("z", "f", "b", "s"):
            comparison.perform(word)
    comparison.undo(3)
    comparison.perform("i")
    for variant, session in zip(variants, comparison.sessions, strict=True):
        lr = variant.overrides["lr"]
        loop = plain_loop(NOISY.replace("lr = 0.1\n", f"lr = {lr}\n"), path)
        loop.ops("z f b s", 3)
        loop.ops("z")
        loop.ops("f b s z")
        w = session.scenario.namespace["w"]
        assert bits(w) == bits(loop.ns["w"])
        assert bits(session.loss) == bits(loop.loss)
        solo = Session.open(path, overrides={"lr": lr})
        for word in ("z", "f", "b", "s") * 4:
            solo.perform(word)
        solo.undo(3)
        solo.perform("i")
        assert bits(solo.scenario.namespace["w"]) == bits(w)


def test_lockstep_run_stops_when_any_variant_meets_the_condition() -> None:
    from optdbg.engine.breakpoints import parse_condition

    comparison = Comparison.open(make_variants(["quadratic_bowl"], [("lr", [0.1, 0.25])]))
    conditions = [parse_condition("loss < 8.01") for _ in comparison.sessions]
    result = comparison.run_until(conditions, max_rounds=400)
    assert result.reason == "condition" and "lr=0.25" in result.message
    slow, fast = comparison.sessions
    assert len(slow.events) == len(fast.events)  # lockstep: the same number of ops
    assert fast.loss_value is not None and fast.loss_value < 8.01
    assert slow.loss_value is not None and slow.loss_value > 8.01


def test_set_hyper_changes_one_variant_only() -> None:
    comparison = Comparison.open(make_variants(["quadratic_bowl"], [("lr", [0.1, 0.25])]))
    comparison.set_hyper(1, 0, "lr", 0.5)
    comparison.perform("i")
    lrs = [s.optimizer.param_groups[0]["lr"] for s in comparison.sessions]
    assert lrs == [0.1, 0.5]


def test_epochs_run_whole_passes_over_each_variants_data(tmp_path: Path) -> None:
    path = tmp_path / "batches.py"
    path.write_text(
        "import torch\n"
        "batch_size = 2\n"
        "X = torch.arange(8.0).reshape(8, 1)\n"
        "data = [X[i : i + batch_size] for i in range(0, 8, batch_size)]\n"
        "w = torch.zeros(1, requires_grad=True)\n"
        "optimizer = torch.optim.SGD([w], lr=0.01)\n"
        "def forward(batch):\n"
        "    return ((batch * w - 1) ** 2).sum()\n",
        encoding="utf-8",
    )
    comparison = Comparison.open(make_variants([str(path)], [("batch_size", [2, 4])]))
    for _ in range(2):
        for i in range(2):
            comparison.run_epoch(i)
    small, big = comparison.sessions
    assert (small.epoch, small.batch, small.step_count) == (2, 4, 8)
    assert (big.epoch, big.batch, big.step_count) == (2, 2, 4)


# ----------------------------------------------------------------- the command


def test_compare_table_reproduces_the_three_bowl_lectures() -> None:
    result = optdbg(
        "compare",
        "quadratic_bowl",
        "--set",
        "lr=0.1,10,0.25",
        "--ops",
        "f z b s",
        "--repeat",
        "20",
        "--table",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["#", "lr=0.1", "lr=10", "lr=0.25"]
    start = [lines[0].index(label) for label in ("lr=0.1", "lr=10", "lr=0.25")]
    cells = [
        [line[a:b].strip() for a, b in zip(start, [*start[1:], None], strict=True)]
        for line in lines[1:21]
    ]
    lr01, lr10, lr025 = ([row[k] for row in cells] for k in range(3))
    # lr 0.1: loss 201 -> 131.52 -> 87.05, the first step to (8.6, 7.6)
    assert lr01[:3] == ["201  [8.6, 7.6]", "131.52  [7.48, 5.68]", "87.052803  [6.584, 4.144]"]
    # lr 10: the loss reaches inf within 20 iterations
    assert lr10[0] == "201  [-130, -230]" and lr10[-1].startswith("inf")
    # lr 0.25: at (3, -2) within about 17 iterations (to the 5 digits shown)
    assert lr025[16].endswith("[3.0001, -1.9999]") and lr025[17].endswith("[3, -2]")
    assert "lr=0.1: final loss 8.040084839 after 20 steps" in result.stdout
    assert "lr=10: final loss inf after 20 steps" in result.stdout
    assert "lr=0.25: final loss 8 after 20 steps" in result.stdout


def test_compare_json_records_equal_each_solo_run() -> None:
    got = records(
        optdbg(
            "compare",
            "quadratic_bowl",
            "--set",
            "lr=0.1,0.25",
            "--ops",
            "f b s z",
            "--repeat",
            "2",
            "--json",
        )
    )
    assert [r["variant"] for r in got[:2]] == ["lr=0.1", "lr=0.25"]
    for label, lr in (("lr=0.1", "0.1"), ("lr=0.25", "0.25")):
        solo = records(
            optdbg(
                "run",
                "quadratic_bowl",
                "--set",
                f"lr={lr}",
                "--ops",
                "f b s z",
                "--repeat",
                "2",
                "--json",
            )
        )
        mine = [
            {k: v for k, v in r.items() if k != "variant"} for r in got if r["variant"] == label
        ]
        assert json.dumps(mine) == json.dumps(solo)
