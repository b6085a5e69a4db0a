"""Import contracts (import-linter, configured in pyproject.toml), run as part of the suite:
the engine stays free of the UI whatever imports it gains, has no import cycle, and its
observers never import a driver."""

from __future__ import annotations

from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).parents[1]


def test_import_contracts_hold(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0


def test_the_contracts_count_function_level_and_type_checking_imports() -> None:
    """The acyclic contract counts every import: grimp (import-linter's graph) sees an
    import inside a function and one under `if TYPE_CHECKING:` as edges like any other."""
    import grimp

    graph = grimp.build_graph("optdbg.engine", include_external_packages=False)
    source = (ROOT / "engine" / "fmt.py").read_text(encoding="utf-8").splitlines()
    lines = {
        d["line_number"]
        for d in graph.get_import_details(
            importer="optdbg.engine.fmt", imported="optdbg.engine.snapshot"
        )
    }
    inside = [i for i in lines if source[i - 1].startswith("    ")]
    assert len(lines) == 2 and len(inside) == 2, lines  # TYPE_CHECKING, and in fmt.brief
    config = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'type = "acyclic_siblings"' in config
    assert "exclude_type_checking_imports" not in config


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


def test_the_readme_map_names_files_that_exist() -> None:
    """Every engine/ and tui/ path in the README's map of the architecture is there (the map
    is kept true as files move)."""
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("Where things are") :]
    section = section[: section.index("\n\n", section.index("| part |"))]
    paths = set(re.findall(r"`((?:engine|tui)/[\w/.]*)`", section))
    assert len(paths) > 20, paths
    assert sorted(p for p in paths if not (ROOT / p).exists()) == []
