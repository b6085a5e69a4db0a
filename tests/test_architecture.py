"""Import contracts (import-linter, configured in pyproject.toml), run as part of the suite:
the engine stays free of the UI whatever imports it gains."""

from __future__ import annotations

from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).parents[1]


def test_import_contracts_hold(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0


def test_the_tui_draws_its_first_frame_without_torch() -> None:
    """The app module and the CLI import neither torch nor NumPy: the first frame is drawn
    while the engine thread imports them (launch time)."""
    import subprocess
    import sys

    code = (
        "import sys; import optdbg.tui.app, optdbg.tui.cli\n"
        "print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
