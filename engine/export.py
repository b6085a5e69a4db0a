"""Export an extracted Graph to DOT, PNG or SVG.

The drawing follows torchviz's `make_dot` (grey op nodes named after their grad_fn,
light-blue parameter leaves with their names and shapes, orange saved tensors, the
green output) and adds what optdbg knows: each node's data and grad (as micrograd
draws them), the gradient sent along each edge in small graphs, and the module that
produced each node as a cluster (`model.0`, `loss_fn`).

The DOT is generated from the same `Graph` the TUI shows rather than by torchviz: torchviz
walks live tensors (its saved tensors are gone after backward) and knows nothing of values
or gradients. torchviz stays a dependency for users who want `make_dot` itself; see
`torchviz_make_dot`, which imports it with the `distutils` guard Python 3.12+ needs.

Rendering goes through the graphviz package (`optdbg.engine.render`, in a worker process
that a cancel or optdbg's exit kills) with the system `dot` when it is on PATH, else the
`graphviz-pure` program (a dependency, installed next to Python's executable).
graphviz-pure has font metrics only for the fonts it bundles (Tinos, Arimo, Cousine), so
with it the labels use Cousine (a monospace font metric-compatible with Courier New).
When no renderer works, the DOT is written instead and the result says so.

Files are written atomically (a temporary file in the same folder, then a rename) and an
existing file is never replaced unless `force=True`: `export_graph` raises ExportError
naming the file. `unique_path` picks a free name (`name-1.png`, `name-2.png`, ...) for
callers that must not fail, such as the TUI's `e` key (see `default_path`).
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from . import fmt as numfmt
from .graph import Graph, Node
from .render import render as graphviz_render
from .snapshot import TensorView

FORMATS = {".png": "png", ".svg": "svg", ".dot": "dot", ".gv": "dot"}
"""Output file extension -> format."""

RENDER_TIMEOUT = 120.0
SAVED_NODES_UP_TO = 150
"""Graphs up to this many nodes draw saved tensors as their own (orange) nodes, as
torchviz does; bigger ones list them inside the op's box, which keeps layout fast."""
EDGE_LABELS_UP_TO = 60
"""Graphs up to this many nodes label each edge with the gradient sent along it."""
NAME_BYTES = 200
"""Longest default export file name, in bytes (file systems allow 255; room for `-N`)."""

_COLORS = {"op": "lightgrey", "leaf": "lightblue", "saved": "orange", "output": "darkolivegreen1"}


class ExportError(Exception):
    """The export was refused before anything was written (bad name, existing file...)."""


@dataclass(frozen=True)
class Renderer:
    """A program that lays out DOT: the system `dot` or graphviz-pure."""

    path: str
    kind: str
    """"dot" or "graphviz-pure"."""

    @property
    def font(self) -> str:
        return "Cousine" if self.kind == "graphviz-pure" else "monospace"


@dataclass(frozen=True)
class ExportResult:
    path: Path | None
    """The file written in the requested format; None when it could not be rendered."""
    format: str
    message: str
    """One line for the user: what was written where, or what went wrong and what to do."""
    dot_path: Path | None = None
    """Where the DOT text was written instead, when rendering was impossible."""
    renderer: Renderer | None = None
    nodes: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.path is not None


# ------------------------------------------------------------------ renderer


def find_renderer() -> Renderer | None:
    """The system `dot` if on PATH, else graphviz-pure (next to Python, or on PATH).

    The environment variable OPTDBG_DOT overrides the search: a path to a dot-compatible
    program, or an empty string for none (the DOT fallback).
    """
    forced = os.environ.get("OPTDBG_DOT")
    if forced is not None:
        if not forced.strip():
            return None
        kind = "graphviz-pure" if "graphviz-pure" in Path(forced).name else "dot"
        return Renderer(forced, kind)
    dot = shutil.which("dot")
    if dot:
        return Renderer(dot, "dot")
    name = "graphviz-pure.exe" if os.name == "nt" else "graphviz-pure"
    for folder in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return Renderer(str(candidate), "graphviz-pure")
    found = shutil.which("graphviz-pure")
    return Renderer(found, "graphviz-pure") if found else None


def render(dot: str, fmt: str, renderer: Renderer, timeout: float = RENDER_TIMEOUT) -> bytes:
    """Lay out DOT text and return the PNG/SVG bytes (a PNG at a dpi that keeps it within
    the size limits); RuntimeError with the reason if not. Runs the graphviz package in a
    worker that a cancel, a timeout or optdbg's exit kills (`optdbg.engine.render`)."""
    try:
        return graphviz_render(dot, fmt, renderer.path, timeout)
    except RuntimeError as e:
        reason = str(e)
        if not reason.startswith(renderer.path):
            reason = f"{renderer.kind} {reason}"
        raise RuntimeError(reason) from None


# ------------------------------------------------------------------ DOT


def _escaped(text: str) -> str:
    """Text inside a DOT string: one line, control characters escaped (no raw ESC reaches
    an SVG, which would make it invalid XML), backslashes and quotes escaped for DOT."""
    line = numfmt.text(text.replace("\n", " "), limit=None, newlines=False)
    return line.replace("\\", "\\\\").replace('"', '\\"')


def _q(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + _escaped(text) + '"'


def _label(lines: Iterable[str]) -> str:
    """A left-aligned multi-line DOT label (each line ends in \\l)."""
    return '"' + "".join(_escaped(line) + "\\l" for line in lines) + '"'


_text = partial(numfmt.tensor, digits=4, limit=4, ascii=True)
"""A tensor in a DOT label: fmt.tensor with 4 significant digits, in ASCII."""


def _node_lines(graph: Graph, node: Node, inline_saved: bool) -> list[str]:
    flow = graph.flow.get(node.id)
    if node.is_leaf:
        lines = [node.label, f" {numfmt.shape(node.value.shape)}" if node.value is not None else ""]
        if node.value is not None:
            lines.append(f"data {_text(node.value, with_shape=False)}")
        if flow is not None:
            lines.append(f"grad {_text(flow.grad_after, with_shape=False)}")
            if flow.grad_before is not None:
                lines.append(f"  (+= {_text(flow.grad, with_shape=False)} this pass)")
        return [line for line in lines if line]
    lines = [f"{node.name}  {node.module}" if node.module else node.name]
    if node.value is not None:
        lines.append(f"data {_text(node.value)}")
    if flow is not None:
        lines.append(f"grad {_text(flow.grad, with_shape=node.value is None)}")
    if inline_saved:
        names = [
            f"{s.name}={s.source}" if s.source else f"{s.name}{_short_shape(s)}"
            for s in node.saved_tensors
        ]
        if names:
            lines.append("saved " + ", ".join(names))
    return lines


def _short_shape(s: Any) -> str:
    if s.freed:
        return " (freed)"
    return numfmt.shape(s.value.shape) if isinstance(s.value, TensorView) else ""


def _saved_text(s: Any) -> str:
    if s.freed:
        return f"({s.note or 'freed'})"
    text = _text(s.value) if isinstance(s.value, TensorView) else str(s.value)
    return f"{s.source} = {text}" if s.source else text


def to_dot(
    graph: Graph, *, title: str | None = None, font: str = "monospace", clusters: bool = False
) -> str:
    """The graph in DOT (from the leaves at the top down to the loss, as torchviz draws).

    Each op node names the module that produced it. `clusters=True` also boxes each
    module's nodes; dot then has to place boxes that share ranks side by side, which
    turns a deep network into a wide staircase, so it is off by default.
    """
    inline_saved = len(graph) > SAVED_NODES_UP_TO
    edge_labels = graph.has_flow and len(graph) <= EDGE_LABELS_UP_TO
    out = [
        "digraph optdbg {",
        f"  graph [fontname={_q(font)} fontsize=12 ranksep=0.25 nodesep=0.25"
        + (f" label={_q(title)} labelloc=t" if title else "")
        + "]",
        f"  node [style=filled shape=box fontname={_q(font)} fontsize=10 height=0.2"
        f" fillcolor={_COLORS['op']}]",
        f"  edge [fontname={_q(font)} fontsize=8]",
    ]
    groups: dict[str, list[str]] = {}
    body: list[str] = []
    for nid, node in graph.nodes.items():
        lines = _node_lines(graph, node, inline_saved)
        color = f" fillcolor={_COLORS['leaf']}" if node.is_leaf else ""
        statement = f"  {_q(nid)} [label={_label(lines)}{color}]"
        if node.module is not None and clusters:
            groups.setdefault(node.module, []).append(statement)
        else:
            body.append(statement)
        if not inline_saved and not node.is_leaf:
            for k, s in enumerate(node.saved_tensors):
                sid = f"{nid}.s{k}"
                head = f"{s.name} = {s.source}" if s.source else s.name
                text = _saved_text(s).removeprefix(f"{s.source} = " if s.source else "")
                saved_lines = [head, text]
                body.append(
                    f"  {_q(sid)} [label={_label(saved_lines)} fillcolor={_COLORS['saved']}]"
                )
                body.append(f"  {_q(sid)} -> {_q(nid)} [dir=none style=dashed]")
    for k, (module, statements) in enumerate(groups.items()):
        out.append(f"  subgraph cluster_{k} {{")
        out.append(f"    label={_q(module)} style=rounded color=grey50 fontcolor=grey30")
        out.extend("  " + s for s in statements)
        out.append("  }")
    out.extend(body)
    for nid, node in graph.nodes.items():
        flow = graph.flow.get(nid)
        for slot, input_id in enumerate(node.inputs):
            if input_id is None:
                continue
            attrs = []
            if not graph.nodes[input_id].is_leaf:
                attrs.append("weight=10")  # keeps chains of ops straight
            if edge_labels and flow is not None and slot < len(flow.grad_out):
                attrs.append(f"label={_q(' ' + _text(flow.grad_out[slot], limit=2))}")
            tail = f" [{' '.join(attrs)}]" if attrs else ""
            out.append(f"  {_q(input_id)} -> {_q(nid)}{tail}")
    if graph.root is not None:
        loss = _text(graph.loss) if graph.loss is not None else ""
        shape = numfmt.shape(graph.loss.shape) if graph.loss is not None else ""
        out.append(
            f'  "loss" [label={_label(["loss", shape, loss])} fillcolor={_COLORS["output"]}]'
        )
        out.append(f'  {_q(graph.root)} -> "loss"')
    out.append("}")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ files


def unique_path(path: str | Path) -> Path:
    """`path` if no file has that name, else the first free `stem-1.ext`, `stem-2.ext`, ..."""
    path = Path(path)
    if not path.exists():
        return path
    n = 1
    while True:
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        if not candidate.exists():
            return candidate
        n += 1


def default_path(
    scenario: str, op_count: int, directory: str | Path = ".", ext: str = ".png"
) -> Path:
    """A free file name for exporting after `op_count` ops: `<scenario>-op<N>.png`, the
    scenario's name shortened so that the file name stays within what file systems allow."""
    tail = f"-op{op_count}{ext}"
    stem = scenario
    while len((stem + tail).encode("utf-8")) > NAME_BYTES:
        stem = stem[:-1]
    return unique_path(Path(directory) / f"{stem}{tail}")


def write_atomic(path: Path, data: bytes, force: bool = False) -> None:
    """Write via a temporary file in the same folder; refuse to replace unless `force`."""
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        if force:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)  # atomic, and fails if the name is taken
        except FileExistsError:
            raise ExportError(f"{path} already exists (use --force to replace it)") from None
        except OSError:  # no hard links here: check, then rename
            if path.exists():
                raise ExportError(f"{path} already exists (use --force to replace it)") from None
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def export_graph(
    graph: Graph,
    path: str | Path,
    *,
    title: str | None = None,
    force: bool = False,
    renderer: Renderer | bool | None = True,
) -> ExportResult:
    """Write `graph` to `path`, the format from its extension (.png, .svg, .dot/.gv).

    Raises ExportError, writing nothing, for an unknown extension, a missing folder, or an
    existing file without `force`. When PNG/SVG cannot be rendered (no renderer, or it
    failed) the DOT is written next to it (a free `.dot` name) and the result's `ok` is
    False with a message saying why and how to render it. `renderer=True` finds one
    (`find_renderer`); pass a Renderer to choose, or None for none.
    """
    start = time.perf_counter()
    path = Path(path)
    fmt = _checked_format(path, force)
    chosen = find_renderer() if renderer is True else (renderer or None)
    font = chosen.font if chosen is not None else "monospace"
    dot = to_dot(graph, title=title, font=font)
    return _write(dot, path, fmt, force, chosen, len(graph), start)


def export_torchviz(
    loss: Any,
    params: dict[str, Any],
    path: str | Path,
    *,
    force: bool = False,
    renderer: Renderer | bool | None = True,
) -> ExportResult:
    """Write torchviz's own drawing of a live loss (`make_dot(loss, params)`) to `path`:
    torchviz builds the graphviz.Digraph, optdbg renders and writes it as `export_graph`
    does (atomically, never replacing a file without `force`, the DOT when no renderer)."""
    start = time.perf_counter()
    path = Path(path)
    fmt = _checked_format(path, force)
    chosen = find_renderer() if renderer is True else (renderer or None)
    digraph = torchviz_make_dot(loss, params=params)
    nodes = sum(1 for line in digraph.body if "[label=" in line)
    return _write(digraph.source, path, fmt, force, chosen, nodes, start)


def _checked_format(path: Path, force: bool) -> str:
    """The format of `path` from its extension; ExportError when it cannot be written."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ExportError(
            f"cannot tell the format of {path.name!r}: name the file .png, .svg or .dot"
        )
    if not path.parent.is_dir():
        raise ExportError(f"the folder {path.parent} does not exist")
    if path.is_dir():
        raise ExportError(f"{path} is a folder: give a file name such as graph.png")
    if path.exists() and not force:
        raise ExportError(f"{path} already exists (use --force to replace it)")
    return fmt


def _write(
    dot: str,
    path: Path,
    fmt: str,
    force: bool,
    chosen: Renderer | None,
    n: int,
    start: float,
) -> ExportResult:
    """Render DOT text to `path` (or write it as is for .dot); the DOT next to it when the
    rendering is impossible."""
    if fmt == "dot":
        write_atomic(path, dot.encode("utf-8"), force)
        return ExportResult(
            path, fmt, f"wrote {path} ({n} nodes)", None, chosen, n, time.perf_counter() - start
        )
    reason = "no Graphviz renderer found (no `dot` on PATH, no graphviz-pure next to Python)"
    if chosen is not None:
        try:
            data = render(dot, fmt, chosen)
            if fmt == "svg":
                _check_svg(data)
        except RuntimeError as e:
            reason = str(e)
        else:
            write_atomic(path, data, force)
            seconds = time.perf_counter() - start
            return ExportResult(
                path,
                fmt,
                f"wrote {path} ({n} nodes, {chosen.kind}, {seconds:.1f} s)",
                None,
                chosen,
                n,
                seconds,
            )
    dot_path = unique_path(path.with_suffix(".dot"))
    write_atomic(dot_path, dot.encode("utf-8"))
    return ExportResult(
        None,
        fmt,
        f"could not write {path.name}: {reason}. Wrote the graph as DOT to {dot_path}; "
        f"render it with `graphviz-pure -T{fmt} {dot_path} -o {path}` "
        "(pip install graphviz-pure) or Graphviz's `dot`.",
        dot_path,
        chosen,
        n,
        time.perf_counter() - start,
    )


def _check_svg(data: bytes) -> None:
    """RuntimeError unless `data` is well-formed XML (an SVG a browser can open)."""
    from xml.etree import ElementTree

    try:
        ElementTree.fromstring(data)
    except ElementTree.ParseError as e:
        raise RuntimeError(f"the renderer wrote an SVG that is not valid XML ({e})") from None


# ------------------------------------------------------------------ torchviz


def torchviz_make_dot(*args: Any, **kwargs: Any) -> Any:
    """torchviz.make_dot, importable on Python 3.12+ (where distutils is gone).

    torchviz 0.0.3 does `from distutils.version import LooseVersion` to compare torch
    versions; when distutils is missing a minimal stand-in module is registered first.
    """
    import warnings

    _ensure_distutils()
    from torchviz import make_dot

    with warnings.catch_warnings():  # distutils' LooseVersion is deprecated where it exists
        warnings.simplefilter("ignore", DeprecationWarning)
        return make_dot(*args, **kwargs)


def _ensure_distutils() -> None:
    try:
        import distutils.version  # noqa: F401
    except ImportError:
        stub = _distutils_stub()
        sys.modules["distutils"] = stub
        sys.modules["distutils.version"] = stub.version


def _distutils_stub() -> Any:
    """A `distutils` module with only `version.LooseVersion`, enough for torchviz."""
    import functools
    import re
    import types

    @functools.total_ordering
    class LooseVersion:
        def __init__(self, v: str) -> None:
            self.vstring = str(v)
            parts = [p for p in re.split(r"(\d+|[a-zA-Z]+|\.)", self.vstring) if p.strip(".")]
            self.version = [int(p) if p.isdigit() else p for p in parts]

        def _key(self) -> list[tuple[int, Any]]:
            return [(1, p) if isinstance(p, int) else (0, p) for p in self.version]

        def __eq__(self, other: object) -> bool:
            return self._key() == LooseVersion(str(other))._key()

        def __lt__(self, other: object) -> bool:
            return self._key() < LooseVersion(str(other))._key()

        def __hash__(self) -> int:
            return hash(self.vstring)

        def __str__(self) -> str:
            return self.vstring

    package = types.ModuleType("distutils")
    version = types.ModuleType("distutils.version")
    version.LooseVersion = LooseVersion  # type: ignore[attr-defined]
    package.version = version  # type: ignore[attr-defined]
    return package
