"""Graph export to DOT, PNG and SVG, with graphviz-pure and no system Graphviz.

Rendering is forced onto graphviz-pure (the dependency installed next to Python):
PATH is narrowed to the environment's scripts folder, so a system `dot` is never used.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from test_graph import deep_mlp

from optdbg.engine import Session, fmt
from optdbg.engine.export import (
    ExportError,
    Renderer,
    default_path,
    export_graph,
    find_renderer,
    render,
    to_dot,
    torchviz_make_dot,
    unique_path,
)
from optdbg.engine.graph import Graph

SCRIPTS = Path(sys.executable).parent
OPTDBG = SCRIPTS / "optdbg"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def no_system_graphviz(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(SCRIPTS))
    monkeypatch.delenv("OPTDBG_DOT", raising=False)


def graph_of(name: str | Path, ops: str = "f b") -> tuple[Graph, Session]:
    session = Session.open(name)
    session.capture_graph = True
    for word in ops.split():
        session.perform(word)
    graph = session.graph()
    assert graph is not None
    return graph, session


def png_size(data: bytes) -> tuple[int, int]:
    """Check a PNG's structure (signature, IHDR first, every chunk's CRC, IEND last)."""
    assert data[:8] == PNG_SIGNATURE
    pos, kinds = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        kinds.append(kind)
        pos += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def graphviz_pure() -> Renderer:
    renderer = find_renderer()
    assert renderer is not None, "graphviz-pure is a dependency: it must be installed"
    return renderer


# ----------------------------------------------------------------- renderer


def test_without_system_dot_graphviz_pure_next_to_python_is_used() -> None:
    renderer = graphviz_pure()
    assert renderer.kind == "graphviz-pure"
    assert Path(renderer.path).parent == SCRIPTS
    assert renderer.font == "Cousine"  # graphviz-pure has no metrics for monospace


def test_optdbg_dot_overrides_the_search(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTDBG_DOT", "")
    assert find_renderer() is None
    monkeypatch.setenv("OPTDBG_DOT", "/opt/graphviz/bin/dot")
    assert find_renderer() == Renderer("/opt/graphviz/bin/dot", "dot")


# ----------------------------------------------------------------- DOT


def test_dot_content_follows_make_dot_plus_values() -> None:
    graph, _ = graph_of("log_xy")
    dot = to_dot(graph, title="log(x*y)")
    for text in ("SumBackward0", "LogBackward0", "MulBackward0", '"x\\l', '"y\\l'):
        assert text in dot
    assert "fillcolor=lightblue" in dot  # parameters, as in torchviz
    assert "fillcolor=orange" in dot  # saved tensors
    assert "fillcolor=darkolivegreen1" in dot  # the output
    assert "self = x" in dot and "other = y" in dot
    assert "data [2, 1.9, 1.8, 1.7, ...]" in dot  # x's values
    assert "grad [0.5, 0.5263, 0.5556, 0.5882, ...]" in dot  # x.grad = 1/x
    assert 'label="log(x*y)"' in dot


def test_dot_is_valid_for_the_renderer() -> None:
    graph, _ = graph_of("mlp_sequential")
    dot = to_dot(graph, title='quotes " and \\ backslashes', font="Cousine")
    layout = json.loads(render(dot, "json", graphviz_pure()))
    labels = [o.get("label", "") for o in layout["objects"]]
    assert sum("AddmmBackward0  model." in label for label in labels) == 2
    assert any(label.startswith("model.0.weight") for label in labels)
    assert any("MseLossBackward0  loss_fn" in label for label in labels)
    # every node of the graph, its saved tensors and the loss are drawn
    saved = sum(len(n.saved_tensors) for n in graph.nodes.values())
    assert len(layout["objects"]) == len(graph) + saved + 1
    assert len(layout["edges"]) == len(graph.edges) + saved + 1


def test_dot_before_backward_has_no_grads_and_clusters_are_optional() -> None:
    graph, _ = graph_of("mlp_sequential", "f")
    dot = to_dot(graph)
    assert "grad " not in dot
    assert "subgraph" not in dot
    clustered = to_dot(graph, clusters=True)
    assert 'label="model.0"' in clustered and "subgraph cluster_" in clustered
    json.loads(render(clustered, "json", graphviz_pure()))


def test_the_graphviz_package_renders_the_dot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The graphviz package (which torchviz builds on) lays out optdbg's DOT with
    graphviz-pure as its `dot`: the SVG it returns draws every node of the graph."""
    graphviz = pytest.importorskip("graphviz")
    (tmp_path / "dot").symlink_to(graphviz_pure().path)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{SCRIPTS}")
    graph, _ = graph_of("dag_toy")
    svg = graphviz.Source(to_dot(graph, font="Cousine")).pipe(format="svg")
    root = ET.fromstring(svg)
    ns = {"svg": "http://www.w3.org/2000/svg"}
    saved = sum(len(n.saved_tensors) for n in graph.nodes.values())
    assert len(root.findall(".//svg:g[@class='node']", ns)) == len(graph) + saved + 1
    assert "AddBackward0" in "".join(root.itertext())


def test_tensors_in_the_dot_are_ascii() -> None:
    graph, _ = graph_of("linear_regression", "f")
    mv = next(n for n in graph.nodes.values() if n.name == "MvBackward0")
    assert fmt.tensor(mv.value, 4, 4, ascii=True).startswith("(10000) mean ")
    assert to_dot(graph).isascii()


# ----------------------------------------------------------------- files


def test_export_png(tmp_path: Path) -> None:
    graph, _ = graph_of("log_xy")
    result = export_graph(graph, tmp_path / "g.png", title="log")
    assert result.ok and result.path == tmp_path / "g.png" and result.format == "png"
    assert result.renderer is not None and result.renderer.kind == "graphviz-pure"
    width, height = png_size((tmp_path / "g.png").read_bytes())
    assert 200 < width < 5000 and 200 < height < 5000
    assert "g.png" in result.message and result.nodes == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.png"]  # no temporary left


def test_export_svg(tmp_path: Path) -> None:
    graph, _ = graph_of("mlp_sequential")
    result = export_graph(graph, tmp_path / "g.svg")
    assert result.ok
    root = ET.fromstring((tmp_path / "g.svg").read_bytes())
    assert root.tag.endswith("svg")
    texts = "".join(root.itertext())
    assert "SigmoidBackward0" in texts and "model.2.bias" in texts
    ns = {"svg": "http://www.w3.org/2000/svg"}
    assert 'font-family="Cousine' in (tmp_path / "g.svg").read_text(encoding="utf-8")
    assert root.findall(".//svg:g[@class='node']", ns)


def test_export_dot(tmp_path: Path) -> None:
    graph, _ = graph_of("quadratic_bowl")
    result = export_graph(graph, tmp_path / "g.dot")
    assert result.ok and result.format == "dot"
    text = (tmp_path / "g.dot").read_text(encoding="utf-8")
    assert text.startswith("digraph optdbg {") and "PowBackward0" in text
    json.loads(render(text, "json", graphviz_pure()))


def test_existing_files_are_never_replaced_silently(tmp_path: Path) -> None:
    graph, _ = graph_of("dag_toy")
    target = tmp_path / "g.svg"
    target.write_text("mine", encoding="utf-8")
    with pytest.raises(ExportError, match="already exists"):
        export_graph(graph, target)
    assert target.read_text(encoding="utf-8") == "mine"
    assert export_graph(graph, target, force=True).ok
    assert target.read_text(encoding="utf-8").startswith("<?xml")
    assert unique_path(target) == tmp_path / "g-1.svg"
    (tmp_path / "g-1.svg").write_text("", encoding="utf-8")
    assert unique_path(target) == tmp_path / "g-2.svg"
    assert default_path("dag_toy", 3, tmp_path) == tmp_path / "dag_toy-op3.png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g-1.svg", "g.svg"]


@pytest.mark.parametrize("name", ["g.pdf", "g", "missing/g.png"])
def test_bad_names_are_refused_before_writing(tmp_path: Path, name: str) -> None:
    graph, _ = graph_of("dag_toy")
    with pytest.raises(ExportError):
        export_graph(graph, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_without_a_renderer_the_dot_is_written(tmp_path: Path) -> None:
    graph, _ = graph_of("log_xy")
    result = export_graph(graph, tmp_path / "g.png", renderer=None)
    assert not result.ok and result.path is None
    assert result.dot_path == tmp_path / "g.dot"
    assert "no Graphviz renderer found" in result.message and "g.dot" in result.message
    assert "MulBackward0" in (tmp_path / "g.dot").read_text(encoding="utf-8")
    assert not (tmp_path / "g.png").exists()
    # a second fallback does not replace the first DOT
    assert export_graph(graph, tmp_path / "g.png", renderer=None).dot_path == tmp_path / "g-1.dot"


def test_a_failing_renderer_falls_back_to_dot(tmp_path: Path) -> None:
    graph, _ = graph_of("log_xy")
    broken = Renderer("/bin/false", "dot")
    result = export_graph(graph, tmp_path / "g.svg", renderer=broken)
    assert not result.ok and "dot failed" in result.message
    missing = Renderer(str(tmp_path / "nope"), "graphviz-pure")
    result = export_graph(graph, tmp_path / "h.svg", renderer=missing)
    assert not result.ok and "not found" in result.message
    assert (tmp_path / "h.dot").exists()


def test_a_700_node_graph_exports_to_png(tmp_path: Path) -> None:
    graph, _ = graph_of(deep_mlp(tmp_path, 140))
    assert len(graph) == 701
    start = time.perf_counter()
    result = export_graph(graph, tmp_path / "deep.png")
    seconds = time.perf_counter() - start
    assert result.ok, result.message
    width, height = png_size((tmp_path / "deep.png").read_bytes())
    assert max(width, height) <= 30000 and width * height <= 100_000_000
    # no timing assertion (shared CI machines vary); the figure is reported
    print(f"\n701-node graph to PNG: {seconds:.2f} s, {width}x{height} px")


# ----------------------------------------------------------------- torchviz


def test_torchviz_make_dot_works_without_distutils() -> None:
    code = (
        "import sys; sys.modules['distutils'] = None\n"
        "import torch\n"
        "from optdbg.engine.export import torchviz_make_dot\n"
        "x = torch.ones(2, requires_grad=True)\n"
        "dot = torchviz_make_dot((x * x).sum(), params={'x': x}, show_saved=True)\n"
        "assert 'MulBackward0' in dot.source, dot.source\n"
        "from distutils.version import LooseVersion as V\n"
        "assert V('2.13.0') > V('1.9') and V('1.9') < V('1.10') and V('2.1') == '2.1'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_torchviz_make_dot_in_process() -> None:
    _, session = graph_of("log_xy", "f")
    assert session.loss is not None
    dot = torchviz_make_dot(session.loss, params=dict(session.scenario.params))
    assert "LogBackward0" in dot.source


# ----------------------------------------------------------------- CLI


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "PATH": str(SCRIPTS), **(env or {})}
    return subprocess.run(
        [str(OPTDBG), "export", *args], capture_output=True, text=True, cwd=cwd, env=full
    )


def in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`optdbg export ARGS` through main() (argparse errors exit via SystemExit)."""
    from optdbg.tui.cli import main

    try:
        code = main(["export", *args])
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_export_png_in_a_subprocess(tmp_path: Path) -> None:
    done = cli("log_xy", "--ops", "f b", "-o", "g.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "g.png" in done.stdout and "graphviz-pure" in done.stdout
    png_size((tmp_path / "g.png").read_bytes())
    missing = cli("nope", cwd=tmp_path)
    assert missing.returncode == 2 and "cannot load the scenario" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_cli_export_svg_and_dot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert in_process(capsys, "mlp_sequential", "-o", "g.svg")[0] == 0
    ET.fromstring((tmp_path / "g.svg").read_bytes())
    code, out, _ = in_process(capsys, "dag_toy", "--ops", "forward backward", "-o", "g.dot")
    assert code == 0 and "g.dot" in out
    assert "SubBackward0" in (tmp_path / "g.dot").read_text(encoding="utf-8")


def test_cli_default_name_and_overwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert in_process(capsys, "dag_toy")[0] == 0
    assert in_process(capsys, "dag_toy")[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dag_toy-op1-1.png", "dag_toy-op1.png"]
    code, _, err = in_process(capsys, "dag_toy", "-o", "dag_toy-op1.png")
    assert code == 2 and "already exists" in err and "--force" in err
    assert in_process(capsys, "dag_toy", "-o", "dag_toy-op1.png", "--force")[0] == 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("nope",), "cannot load the scenario"),
        (("log_xy", "--ops", "q"), "unknown op word"),
        (("log_xy", "--ops", ""), "--ops is empty"),
        (("log_xy", "--ops", "z"), "no graph to export"),
        (("log_xy", "-o", "g.pdf"), "cannot tell the format"),
        (("log_xy", "-o", "missing/g.png"), "does not exist"),
    ],
)
def test_cli_errors_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    expected: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = in_process(capsys, *args)
    assert code == 2
    assert expected in err
    assert list(tmp_path.iterdir()) == []


def test_cli_reports_op_errors_and_still_exports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = in_process(capsys, "dag_toy", "--ops", "f b b", "-o", "g.dot")
    assert code == 0 and "op 2 (backward)" in err and "g.dot" in out


def test_cli_without_a_renderer_writes_dot_and_exits_1(tmp_path: Path) -> None:
    done = cli("log_xy", "-o", "g.png", cwd=tmp_path, env={"OPTDBG_DOT": ""})
    assert done.returncode == 1
    assert "no Graphviz renderer found" in done.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["g.dot"]


def test_cli_export_does_not_import_textual(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from optdbg.tui.cli import main\n"
        f"assert main(['export', 'dag_toy', '-o', {str(tmp_path / 'g.svg')!r}]) == 0\n"
        "bad = [m for m in ('textual', 'rich') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
