"""The benchmark suite runs: `python -m bench --quick` end to end (no timing asserted).

The figures themselves are not tested (timings do not belong in unit tests); this only
proves that the one documented command still works against the current engine and app.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_quick_mode_writes_the_table_and_json(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = (tmp_path / "results.md").read_text(encoding="utf-8")
    header = "| measure | scenario | optdbg | plain / baseline | ratio | target | result | load |"
    assert header in table
    for measure in (  # every row of issue 17's table, and the context rows
        "`run --quiet` per iteration vs plain",
        "`run --json` vs `run --quiet`",
        "TUI `i` at 2 keys/s",
        "TUI `i` at 4 keys/s",
        "TUI continuous running",
        "escape → a runaway forward cancelled",
        "launch → loaded scenario",
        "TUI each key → screen",
        "TUI undo",
        "peak RSS: TUI, run",
        "transformer LM",
        "engine per iteration",
        "launch → first frame",
        "graph panel build",
        "PNG export",
        "peak RSS,",
    ):
        assert measure in table, measure
    assert done.stdout.strip() == table.strip()
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert results["quick"] is True
    for section in ("engine", "scaling", "graph", "tui", "cancel", "launch", "memory", "big"):
        assert results[section], section
    assert results["launch"]["failures"] == 0
    assert results["engine"]["mlp"]["op_errors"] == 0
