"""The graph panel's DAG view: the extracted Graph drawn as layered boxes and arrows.

The layout is grandalf's Sugiyama layout (the layered "dot" algorithm, in pure Python);
this module only measures the boxes and draws them on a character canvas. As in the PNG
export, the parameters are at the top and the arrows run down to the loss at the bottom;
a node that several ops use is drawn once, with an arrow to each. Modules can be folded
into one box each (`m`, and big graphs open folded, as the tree does); enter on a box opens
or folds its module. The view renders the same `Graph` as the tree and the export.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding
from textual.containers import ScrollableContainer
from textual.geometry import Region
from textual.message import Message
from textual.widgets import Static

from optdbg.engine import fmt

from .widgets import themed

if TYPE_CHECKING:
    from optdbg.engine.graph import Graph

BOX_TEXT = 22
"""Widest text inside a box (longer labels and values end in …)."""
GAP_X, GAP_Y = 2, 3
"""Columns between boxes of a layer, rows between layers (where the arrows turn)."""
LOSS = "loss"
GROUP = "module:"


@dataclass(frozen=True)
class Box:
    """One box of the drawing: a graph node, a folded module, or the loss."""

    id: str
    lines: tuple[str, ...]
    style: str
    x: int = 0
    y: int = 0

    @property
    def width(self) -> int:
        return max(cell_len(line) for line in self.lines) + 4

    @property
    def height(self) -> int:
        return len(self.lines) + 2

    @property
    def region(self) -> Region:
        return Region(self.x, self.y, self.width, self.height)


def _cut(text: str, width: int = BOX_TEXT) -> str:
    return text if cell_len(text) <= width else text[: width - 1] + "…"


def node_box(graph: Graph, nid: str) -> Box:
    """The box of one node: its op (or parameter name), data and grad, as the tree shows."""
    node = graph.nodes[nid]
    lines = [_cut(f"● {node.label}" if node.is_leaf else f"{node.label}  #{nid}")]
    if node.value is not None:
        lines.append(_cut(f"data {fmt.tensor(node.value, 4, limit=3)}"))
    flow = graph.flow.get(nid)
    if flow is not None and flow.grad is not None:
        lines.append(_cut(f"grad {fmt.tensor(flow.grad, 4, limit=3)}"))
    return Box(nid, tuple(lines), "leaf" if node.is_leaf else "op")


def visible_of(graph: Graph, folded: set[str | None]) -> dict[str, str]:
    """For each node, the id of the box that shows it (its module's box when folded)."""
    return {
        nid: f"{GROUP}{node.module}" if node.module in folded else nid
        for nid, node in graph.nodes.items()
    }


def boxes_and_edges(
    graph: Graph, folded: set[str | None]
) -> tuple[dict[str, Box], list[tuple[str, str]]]:
    """The boxes to draw and the arrows between them (input → consumer, each once)."""
    shown = visible_of(graph, folded)
    groups = graph.by_module()
    boxes: dict[str, Box] = {}
    for nid in graph.nodes:
        bid = shown[nid]
        if bid in boxes:
            continue
        if bid.startswith(GROUP):
            module = bid.removeprefix(GROUP)
            count = len(groups.get(module, []))
            boxes[bid] = Box(bid, (_cut(f"▸ {module}"), f"{count} nodes"), "group")
        else:
            boxes[bid] = node_box(graph, nid)
    edges: dict[tuple[str, str], None] = {}
    for consumer, source in graph.edges:
        a, b = shown[source], shown[consumer]
        if a != b:
            edges[(a, b)] = None
    if graph.root is not None:
        loss = fmt.tensor(graph.loss, 4, limit=3) if graph.loss is not None else ""
        boxes[LOSS] = Box(LOSS, (_cut(f"loss {loss}"),), "loss")
        edges[(shown[graph.root], LOSS)] = None
    return boxes, list(edges)


Path = list[tuple[int, int]]
"""An arrow's waypoints, each step only across or only down; the last is the arrowhead."""


def layout(
    boxes: dict[str, Box], edges: list[tuple[str, str]]
) -> tuple[dict[str, Box], dict[tuple[str, str], Path]]:
    """Place the boxes with grandalf's Sugiyama layout, sources on top and the loss at the
    bottom (rows from its layers, columns from its x, in character cells), and route each
    arrow through the gaps between layers and the room grandalf keeps for long edges."""
    from grandalf.graphs import Edge, Graph, Vertex
    from grandalf.layouts import SugiyamaLayout

    class View:
        def __init__(self, w: int, h: int) -> None:
            self.w, self.h = w, h
            self.xy = (0.0, 0.0)

    vertices = {bid: Vertex(bid) for bid in boxes}
    for bid, v in vertices.items():
        v.view = View(boxes[bid].width, boxes[bid].height)
    grandalf_edges = {(a, b): Edge(vertices[a], vertices[b]) for a, b in edges}
    g = Graph(list(vertices.values()), list(grandalf_edges.values()))
    placed: dict[str, Box] = {}
    paths: dict[tuple[str, str], Path] = {}
    left = 0
    for component in g.C:
        sug = SugiyamaLayout(component)
        sug.xspace, sug.yspace = GAP_X, GAP_Y
        sug.init_all(roots=[v for v in component.sV if not v.e_in()] or None)
        sug.draw()
        heights = [max((v.view.h for v in layer), default=1) for layer in sug.layers]
        tops = [sum(heights[:i]) + GAP_Y * (i + 1) for i in range(len(heights))]
        everything = [v for layer in sug.layers for v in layer]
        shift = left - min(v.view.xy[0] - v.view.w / 2 for v in everything)

        def centre(v: Any, shift: float = shift) -> int:
            x: float = v.view.xy[0]
            return round(x + shift)

        for v in component.sV:
            box = boxes[v.data]
            x = round(v.view.xy[0] - v.view.w / 2 + shift)
            placed[v.data] = Box(box.id, box.lines, box.style, x, tops[sug.grx[v].rank])
        for (a, b), e in grandalf_edges.items():
            if e not in component.sE:
                continue
            ra, rb = sug.grx[e.v[0]].rank, sug.grx[e.v[1]].rank
            dummies = sug.ctrls.get(e, {})
            x, y = centre(e.v[0]), placed[a].y + placed[a].height
            path: Path = [(x, y)]
            for r in range(ra + 1, rb + 1):
                nx = centre(e.v[1]) if r == rb else centre(dummies[r])
                path += [(x, tops[r] - 2), (nx, tops[r] - 2)]
                x = nx
                path.append((x, tops[r] - 1 if r == rb else tops[r] + heights[r]))
            paths[(a, b)] = path
        left = max(b.x + b.width for b in placed.values()) + GAP_X * 2
    shift_y = min(b.y for b in placed.values()) if placed else 0
    placed = {k: Box(b.id, b.lines, b.style, b.x, b.y - shift_y) for k, b in placed.items()}
    paths = {k: [(x, y - shift_y) for x, y in p] for k, p in paths.items()}
    return placed, paths


STYLES = {
    "op": "$text-accent",
    "leaf": "$text-success",
    "group": "$text-warning",
    "loss": "bold $text-success",
}


def draw(boxes: dict[str, Box], paths: dict[tuple[str, str], Path], selected: str | None) -> Text:
    """The canvas: the arrows (lines and corners, crossings joined), then the boxes."""
    if not boxes:
        return Text()
    points = [p for path in paths.values() for p in path]
    width = max([b.x + b.width for b in boxes.values()] + [x + 1 for x, _ in points]) + 1
    height = max([b.y + b.height for b in boxes.values()] + [y + 1 for _, y in points])
    grid = [[" "] * width for _ in range(height)]
    styles: list[list[str]] = [[""] * width for _ in range(height)]

    def put(x: int, y: int, ch: str, style: str = "dim") -> None:
        if 0 <= y < height and 0 <= x < width:
            grid[y][x] = _join(grid[y][x], ch)
            styles[y][x] = style

    for path in paths.values():
        for i, ((xa, ya), (xb, yb)) in enumerate(pairwise(path)):
            if xa == xb:
                for y in range(ya if i == 0 else ya + 1, yb):  # after a corner: below it
                    put(xa, y, "│")
            else:
                step = 1 if xb > xa else -1
                for x in range(xa + step, xb, step):
                    put(x, ya, "─")
                put(xa, ya, "└" if step > 0 else "┘")
                put(xb, ya, "┐" if step > 0 else "┌")
        x, y = path[-1]
        put(x, y, "▼", "bold")
    for box in boxes.values():
        style = STYLES[box.style]
        if box.id == selected:
            style = "bold reverse " + style
        _box(grid, styles, box, style)
    text = Text()
    for y in range(height):
        line = Text()
        for x in range(width):
            line.append(grid[y][x], styles[y][x] or None)
        line.rstrip()
        text.append_text(line)
        text.append("\n")
    text.rstrip()
    return text


_JOINS = {
    frozenset("│─"): "┼",
    frozenset("└┘"): "┴",
    frozenset("┐┌"): "┬",
    frozenset("└┐"): "┼",
    frozenset("┘┌"): "┼",
    frozenset("└┌"): "├",
    frozenset("┘┐"): "┤",
    frozenset("│└"): "├",
    frozenset("│┘"): "┤",
    frozenset("│┐"): "┤",
    frozenset("│┌"): "├",
    frozenset("─┐"): "┬",
    frozenset("─┌"): "┬",
    frozenset("─└"): "┴",
    frozenset("─┘"): "┴",
}


def _join(old: str, new: str) -> str:
    if old in (" ", new):
        return new
    return _JOINS.get(frozenset(old + new), new)


def _box(grid: list[list[str]], styles: list[list[str]], box: Box, style: str) -> None:
    inner = box.width - 2
    rows = ["╭" + "─" * inner + "╮"]
    rows += ["│ " + line + " " * (inner - 1 - cell_len(line)) + "│" for line in box.lines]
    rows.append("╰" + "─" * inner + "╯")
    for dy, row in enumerate(rows):
        for dx, ch in enumerate(row):
            grid[box.y + dy][box.x + dx] = ch
            styles[box.y + dy][box.x + dx] = style


class DagView(ScrollableContainer, can_focus=True):
    """The DAG, scrollable both ways; ↑↓ move through the boxes (layer by layer, left to
    right), enter opens or folds a module, m folds every module or none."""

    BINDINGS = [
        Binding("up", "move(-1)", "previous", show=False),
        Binding("down", "move(1)", "next", show=False),
        Binding("enter,space", "toggle_group", "open/fold", show=False),
        Binding("m", "toggle_modules", "by module", tooltip="fold every module / none"),
    ]
    empty = "no graph yet: press f"
    """What the view says when there is no graph."""

    class Highlighted(Message):
        """A box was selected: a node's id, or None for a module box or the loss."""

        def __init__(self, node_id: str | None) -> None:
            super().__init__()
            self.node_id = node_id

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.graph: Graph | None = None
        self.folded: set[str | None] = set()
        self.selected: str | None = None
        self._boxes: dict[str, Box] = {}
        self._order: list[str] = []

    def compose(self) -> Any:
        yield Static(id="dag-canvas", expand=False, shrink=False)

    def show(self, graph: Graph | None, folded: bool) -> None:
        self.graph = graph
        modules = set(graph.modules()) if graph is not None else set()
        self.folded = set(modules) if folded else set()
        self._redraw()

    def relabel(self, graph: Graph, redraw: bool) -> None:
        """Show another state of the same graph (the slow motion's flow up to a step),
        keeping what is folded and selected."""
        self.graph = graph
        if redraw:
            self._redraw()

    def _redraw(self) -> None:
        canvas = self.query_one("#dag-canvas", Static)
        graph = self.graph
        if graph is None or graph.root is None:
            self._boxes, self._order = {}, []
            canvas.update(Text(self.empty if graph is None else "no graph"))
            return
        boxes, edges = boxes_and_edges(graph, self.folded)
        self._boxes, paths = layout(boxes, edges)
        self._order = sorted(self._boxes, key=lambda b: (self._boxes[b].y, self._boxes[b].x))
        shown = visible_of(graph, self.folded).get(self.selected or "", self.selected)
        if shown not in self._boxes:
            shown = self._order[-1]
        self.selected = shown
        text = draw(self._boxes, paths, shown)
        canvas.update(themed(text, self.app.theme_variables))
        self.call_after_refresh(self._scroll_to_selected)

    def select(self, nid: str) -> None:
        """Select a node (opening its module's box if folded), as the tree's reveal does."""
        if self.graph is None or nid not in self.graph.nodes:
            return
        module = self.graph.nodes[nid].module
        if module in self.folded:
            self.folded.discard(module)
        self.selected = nid
        self._redraw()

    def action_move(self, step: int) -> None:
        if not self._order:
            return
        index = self._order.index(self.selected) if self.selected in self._order else 0
        self.selected = self._order[max(0, min(len(self._order) - 1, index + step))]
        self._redraw()
        self._announce()

    def action_toggle_group(self) -> None:
        if self.graph is None or self.selected is None:
            return
        if self.selected.startswith(GROUP):
            module = self.selected.removeprefix(GROUP)
            self.folded.discard(module)
            members = self.graph.by_module().get(module, [])
            self.selected = members[-1] if members else None
        elif self.selected in self.graph.nodes:
            owner = self.graph.nodes[self.selected].module
            if owner is None:
                return
            self.folded.add(owner)
            self.selected = f"{GROUP}{owner}"
        self._redraw()
        self._announce()

    def action_toggle_modules(self) -> None:
        if self.graph is None:
            return
        modules: set[str | None] = set(self.graph.modules())
        self.folded = set() if self.folded else modules
        self._redraw()

    def _announce(self) -> None:
        graph = self.graph
        valid = graph is not None and self.selected in graph.nodes
        self.post_message(self.Highlighted(self.selected if valid else None))

    def _scroll_to_selected(self) -> None:
        box = self._boxes.get(self.selected or "")
        if box is not None:
            self.scroll_to_region(box.region, animate=False, force=True)
