"""The pitfall corpora (issue 16): correct loops from public training code stay silent under
`optdbg run --strict`; one-mistake loops raise exactly their code on the op of the mistake;
the README's pitfall table is the catalogue's.

Each corpus file says how to run it in a `# corpus:` line: the ops and repeats, and for a
mistake the code expected and the index of the op that must carry it (and no other op any
warning). Traced scripts (tests/corpus/traced) run under the tracer's Python API.
"""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from optdbg.engine import Event, Session
from optdbg.engine.pitfalls import CODES, Context, Thresholds
from optdbg.engine.pitfalls.catalogue import TRIGGERS
from optdbg.engine.pitfalls.context import OptimizerStep
from optdbg.engine.pitfalls.optim import optimizer_recreated
from optdbg.engine.pitfalls.table import markdown
from optdbg.engine.pitfalls.thresholds import HELP
from optdbg.engine.trace import trace

ROOT = Path(__file__).parent
sys.path.insert(0, str(ROOT))

from plain import PlainLoop  # noqa: E402

CORPUS = ROOT / "corpus"
OPTDBG = Path(sys.executable).parent / "optdbg"
HEADER = re.compile(
    r'# corpus: (?:ops="(?P<ops>[^"]+)" repeat=(?P<repeat>\d+) ?)?'
    r'(?:expect="(?P<code>[^"]*)" at=(?P<at>\w+))?'
)

CORRECT = sorted((CORPUS / "correct").glob("*.py"))
MISTAKES = sorted((CORPUS / "mistakes").glob("*.py"))
TRACED = sorted((CORPUS / "traced").glob("*.py"))


def header(path: Path) -> re.Match[str]:
    found = HEADER.search(path.read_text(encoding="utf-8"))
    assert found is not None, f"{path.name}: no '# corpus:' line"
    return found


def warned(events: list[Event]) -> dict[int, tuple[str, ...]]:
    """{event index: the distinct codes it carries} (a code may name several parameters)."""
    return {e.index: tuple(dict.fromkeys(e.codes())) for e in events if e.warnings}


# ----------------------------------------------------------------- correct loops


@pytest.mark.parametrize("path", CORRECT, ids=lambda p: p.stem)
def test_correct_loop_runs_strict_without_a_warning(path: Path) -> None:
    h = header(path)
    result = subprocess.run(
        [
            str(OPTDBG),
            "run",
            str(path),
            "--ops",
            h["ops"],
            "--repeat",
            h["repeat"],
            "--strict",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_the_corpus_holds_the_issues_loops() -> None:
    names = {p.stem for p in CORRECT}
    assert {
        "tutorial_polynomial_autograd",
        "tutorial_polynomial_nn",
        "tutorial_polynomial_rmsprop",
        "optimizing_model_parameters",
        "mnist_adadelta_steplr",
        "micrograd_moons",
        "d2l_linear_regression",
        "small_gan",
        "adamw_groups",
    } <= names


# ----------------------------------------------------------------- one mistake each


@pytest.mark.parametrize("path", MISTAKES, ids=lambda p: p.stem)
def test_one_mistake_raises_exactly_its_code_on_its_op(path: Path) -> None:
    h = header(path)
    session = Session.open(path)
    events: list[Event] = []
    for _ in range(int(h["repeat"])):
        for word in h["ops"].split():
            events += session.perform(word)
    assert not [e.observer_errors for e in events if e.observer_errors]
    assert warned(events) == {int(h["at"]): (h["code"],)}


@pytest.mark.parametrize("path", TRACED, ids=lambda p: p.stem)
def test_traced_script_raises_exactly_its_code_on_its_op(path: Path) -> None:
    h = header(path)
    with trace() as t:
        runpy.run_path(str(path), run_name="__main__")
    expected = {int(h["at"]): (h["code"],)} if h["code"] else {}
    assert warned(t.events) == expected


def test_every_new_code_has_its_one_mistake_loop() -> None:
    covered = {header(p)["code"] for p in MISTAKES + TRACED}
    second = set(CODES[CODES.index("eval-mode-training") : CODES.index("replay-diverged")])
    second.discard("overfitting")  # issue 14's evaluation code: raised in tests/test_lessons.py
    assert len(second) == 14 and second <= covered, second - covered


# ----------------------------------------------------------------- the table


def test_readme_pitfall_table_is_the_catalogue() -> None:
    readme = (ROOT.parent / "README.md").read_text(encoding="utf-8")
    assert markdown() in readme
    assert set(TRIGGERS) == set(CODES)


def test_every_threshold_is_documented_and_tunes_a_code() -> None:
    names = {f for f in Thresholds.__dataclass_fields__}
    assert set(HELP) == names
    tuned = {n for t in TRIGGERS.values() for n in t.thresholds}
    assert tuned <= names and names - tuned == {"silence"}


# ----------------------------------------------------------------- silenceable, tunable


def _with_config(tmp_path: Path, path: Path, config: str) -> Path:
    source = path.read_text(encoding="utf-8") + f"\noptdbg_config = {config}\n"
    out = tmp_path / path.name
    out.write_text(source, encoding="utf-8")
    return out


def _run(path: Path) -> dict[int, tuple[str, ...]]:
    h = header(path)
    session = Session.open(path)
    events: list[Event] = []
    for _ in range(int(h["repeat"])):
        for word in h["ops"].split():
            events += session.perform(word)
    assert not [e.observer_errors for e in events if e.observer_errors]
    return warned(events)


@pytest.mark.parametrize(
    "path", [p for p in MISTAKES if p.stem != "loss_at_chance"], ids=lambda p: p.stem
)
def test_each_code_can_be_silenced(tmp_path: Path, path: Path) -> None:
    code = header(path)["code"]
    assert _run(_with_config(tmp_path, path, f'{{"silence": ["{code}"]}}')) == {}


@pytest.mark.parametrize(
    ("name", "config"),
    [
        ("dead_relu", '{"dead_relu_fraction": 1.5}'),  # more than every unit: never
        ("init_loss_mismatch", '{"init_loss_factor": 100}'),  # 15.6x ln(10) is below 100x
        ("update_ratio", '{"update_ratio_patience": 100}'),  # 25 steps only
        ("lr_schedule_odd", '{"lr_rise_factor": 1000}'),  # 1.2**16 = 18x
    ],
)
def test_thresholds_are_configurable(tmp_path: Path, name: str, config: str) -> None:
    assert _run(_with_config(tmp_path, CORPUS / "mistakes" / f"{name}.py", config)) == {}


def test_a_lower_threshold_catches_it_earlier(tmp_path: Path) -> None:
    path = _with_config(
        tmp_path, CORPUS / "mistakes" / "update_ratio.py", '{"update_ratio_patience": 5}'
    )
    assert _run(path) == {4 * 4 + 2: ("update-ratio",)}  # the 5th step


# ----------------------------------------------------------------- observing changes nothing


@pytest.mark.parametrize(
    "name", ["dead_relu", "eval_mode_training", "softmax_before_ce", "update_ratio"]
)
def test_observed_values_equal_a_plain_loop(name: str) -> None:
    path = CORPUS / "mistakes" / f"{name}.py"
    session = Session.open(path)
    reference = PlainLoop.load(path)
    for _ in range(6):
        session.perform("i")
        reference.op("i")
    mine = {n: t.detach() for n, t in session.scenario.params}
    for name_, p in reference.ns["model"].named_parameters():
        assert torch.equal(mine[f"model.{name_}"], p.detach()), name_


# ----------------------------------------------------------------- rules fed with facts


def _step(serial: int, fresh: bool, previous: str | None, steps: int) -> Context:
    s = OptimizerStep("Adam", serial, fresh, True, previous, steps)
    return Context(
        op="step",
        op_index=7,
        error=None,
        thresholds=Thresholds(),
        params=(),
        extras=(),
        lrs=(1e-3,),
        maximize=False,
        step_count=2,
        loss=1.0,
        optimizer_steps=(s,),
    )


def test_optimizer_recreated_from_the_facts_a_driver_gives() -> None:
    [finding] = optimizer_recreated(_step(2, True, "another Adam", 1))
    assert finding.code == "optimizer-recreated" and "op 7" in finding.message
    [reset] = optimizer_recreated(_step(1, True, "reset", 1))
    assert "state was reset" in reset.message
    assert list(optimizer_recreated(_step(1, False, None, 0))) == []  # its own next step
    assert list(optimizer_recreated(_step(3, True, "another Adam", 2))) == []  # said once
