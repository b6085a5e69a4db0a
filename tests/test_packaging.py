"""Packaging: a UI-free engine, and a wheel that holds every subpackage and data file."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_engine_imports_no_ui() -> None:
    code = (
        "import sys\n"
        "import optdbg.engine\n"
        "from optdbg.engine import Session, load, builtin_names\n"
        "from optdbg.engine import report, graph, snapshot, events, scenario\n"
        "session = Session.open('quadratic_bowl')\n"
        "session.perform('i')\n"
        "session.snapshot()\n"
        "session.graph()\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print(bad)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# Where setuptools would leave its own files (build/lib, *.egg-info): the repo's
# build/ also holds the strict editable install, so the wheel is built from a copy.
_NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    "tests",
)


def test_wheel_contents(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCES)
    out = tmp_path / "dist"
    # --no-isolation: offline, with the environment's setuptools (>= 70.1 builds wheels
    # itself, so the separate `wheel` package of build-system.requires is not checked: -x)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--skip-dependency-check",
            "-o",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=source,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [wheel] = out.glob("optdbg-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    expected = {
        "optdbg/engine/__init__.py",
        "optdbg/engine/session.py",
        "optdbg/engine/scenario.py",
        "optdbg/tui/__init__.py",
        "optdbg/tui/cli.py",
        "optdbg/tui/app.tcss",
        "optdbg/scenarios/__init__.py",
    }
    expected |= {f"optdbg/scenarios/{p.name}" for p in (ROOT / "scenarios").glob("*.py")}
    expected |= {f"optdbg/scenarios/{p.name}" for p in (ROOT / "scenarios").glob("*.csv")}
    assert "optdbg/scenarios/table_split.csv" in expected  # a built-in's data file
    engine = ROOT / "engine"  # subpackages included: each must be listed in pyproject
    expected |= {f"optdbg/engine/{p.relative_to(engine).as_posix()}" for p in engine.rglob("*.py")}
    expected |= {f"optdbg/tui/{p.name}" for p in (ROOT / "tui").glob("*.py")}
    missing = sorted(expected - names)
    assert not missing, f"missing from the wheel: {missing}"
    assert len(list((ROOT / "scenarios").glob("*.py"))) >= 12

    assert "optdbg/__init__.py" not in names  # optdbg is a namespace package
    top = {n.split("/")[0] for n in names}
    dist_info = {t for t in top if t.endswith(".dist-info")}
    assert top - dist_info == {"optdbg"}, f"unexpected top-level entries: {top}"
    assert not any(n.startswith(("engine/", "tui/", "scenarios/", "tests/")) for n in names)

    [info] = dist_info
    entry_points = zipfile.ZipFile(wheel).read(f"{info}/entry_points.txt").decode()
    assert "optdbg = optdbg.tui.cli:main" in entry_points
