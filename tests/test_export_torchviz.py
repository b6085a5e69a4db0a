"""`optdbg export --style torchviz`: torchviz's own make_dot drawing, rendered and written
as optdbg's export is (graphviz-pure when there is no system Graphviz; atomic; never
replacing a file); the default export is optdbg's drawing, unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path
from xml.etree import ElementTree

OPTDBG = str(Path(sys.executable).with_name("optdbg"))


def _graphviz_pure() -> str:
    """The graphviz-pure program installed with optdbg (from its package's file list)."""
    files = distribution("graphviz-pure").files or []
    found = [f.locate() for f in files if f.name == "graphviz-pure"]
    assert found, "graphviz-pure is a dependency: its program must be installed"
    return str(found[0])


def _export(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # no system Graphviz: PATH holds only Python's folder; the renderer is graphviz-pure
    env = {**os.environ, "PATH": str(Path(sys.executable).parent), "OPTDBG_DOT": _graphviz_pure()}
    return subprocess.run(
        [OPTDBG, "export", "mlp_sequential", "--ops", "f b", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _svg_text(path: Path) -> str:
    return " ".join(ElementTree.parse(path).getroot().itertext())


def test_torchviz_style_and_the_default_without_system_graphviz(tmp_path: Path) -> None:
    done = _export(tmp_path, "--style", "torchviz", "-o", "tv.svg")
    assert done.returncode == 0, done.stderr
    assert "graphviz-pure" in done.stdout
    text = _svg_text(tmp_path / "tv.svg")
    # torchviz's labels: grad_fn class names, parameter names with their shapes
    for label in ("MseLossBackward0", "AddmmBackward0", "AccumulateGrad", "model.0.weight"):
        assert label in text
    assert "(3, 2)" in text and "grad" not in text.replace("AccumulateGrad", "")
    again = _export(tmp_path, "--style", "torchviz", "-o", "tv.svg")
    assert again.returncode == 2 and "already exists" in again.stderr
    # the default is optdbg's drawing, as before: values and grads beside each node
    ours = _export(tmp_path, "-o", "graph.svg")
    assert ours.returncode == 0, ours.stderr
    text = _svg_text(tmp_path / "graph.svg")
    assert "grad" in text and "data" in text and "model.0" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph.svg", "tv.svg"]  # no temp left
