"""The graph panel: the grad_fn graph as a tree, node details, and the slow-motion replay.

The tree is built lazily (children are added when a node is first expanded), so a
1,000-node graph costs only what is on screen. Every node appears once, under its first
consumer in depth-first order; other consumers show a reference to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

from optdbg.engine import fmt

from .dagview import DagView
from .text import literal, printable
from .widgets import themed

if TYPE_CHECKING:
    from optdbg.engine.graph import BackwardStep, Graph, Node

LARGE = 300
"""Graphs with more nodes open grouped by module and collapsed."""
MODULE_PREFIX = "module:"


def canonical_parents(graph: Graph) -> dict[str, str | None]:
    """For each node, the consumer under which the tree shows it (first in DFS preorder)."""
    if graph.root is None:
        return {}
    parents: dict[str, str | None] = {graph.root: None}
    stack = [graph.root]
    while stack:
        nid = stack.pop()
        for child in reversed(graph.inputs(nid)):
            if child not in parents:
                parents[child] = nid
                stack.append(child)
    return parents


def _data_grad(graph: Graph, node: Node) -> Text:
    text = Text()
    if node.value is not None:
        text.append(f"  data {fmt.tensor(node.value, 4, limit=3)}", style="dim")
    flow = graph.flow.get(node.id)
    if flow is not None and flow.grad is not None:
        text.append(f" | grad {fmt.tensor(flow.grad, 4, limit=3)}", style="$text-success")
    return text


def node_label(graph: Graph, node: Node, reference: bool = False) -> Text:
    label, name = printable(node.label, one_line=True), printable(node.name, one_line=True)
    if node.is_leaf:
        text = Text.assemble(("● ", "bold $text-success"), (label, "bold"))
    else:
        text = Text.assemble((label, "bold $text-accent"), (f"  {name}", "dim"))
    text.append(f"  #{node.id}", style="dim")
    if reference:
        return Text.assemble(("↪ ", "dim"), text, ("  (shown above)", "dim italic"))
    text.append_text(_data_grad(graph, node))
    return text


def node_details(graph: Graph, node: Node) -> Text:
    """Everything known about one node, for the details pane."""
    text = Text()
    text.append_text(literal(node.label, "bold"))
    text.append_text(literal(f"  {node.name}  #{node.id}", "dim"))
    if node.module:
        text.append_text(literal(f"  in {node.module}", "$text-accent"))
    text.append("\n")
    if node.derivative:
        text.append(f"local derivative: {node.derivative}\n")
    if node.value is not None:
        text.append(f"data: {fmt.tensor(node.value, limit=8)}\n")
    flow = graph.flow.get(node.id)
    if flow is not None:
        for i, g in enumerate(flow.grad_in):
            text.append(f"grad in[{i}]: {fmt.tensor(g, limit=8)}\n", style="$text-success")
        for slot, g in zip(node.inputs, flow.grad_out, strict=False):
            if slot is not None:
                text.append(f"→ #{slot} gets {fmt.tensor(g, limit=8)}\n", style="$text-success")
        if node.is_leaf:
            before, after = fmt.tensor(flow.grad_before), fmt.tensor(flow.grad_after)
            line = f"{node.label}.grad: {before} → {after}\n"
            text.append_text(literal(line, "bold $text-success"))
    elif node.param:
        text.append("no backward recorded through this graph yet (press b)\n", style="dim")
    for s in node.saved:
        if s.freed:
            text.append_text(literal(f"saved {s.name}: {s.note}\n", "dim"))
        else:
            where = f" ({s.source})" if s.source else ""
            value = fmt.tensor(s.value, limit=6) if s.tensor else fmt.nested(s.value)
            text.append_text(literal(f"saved {s.name}{where}: {value}\n"))
    inputs = graph.inputs(node.id)
    if inputs:
        labels = ", ".join(f"#{i} {graph.nodes[i].label}" for i in inputs)
        text.append_text(literal(f"inputs: {labels}"))
        text.append("\n")
    consumers = graph.consumers(node.id)
    if len(consumers) > 1:
        text.append(f"used by {len(consumers)} nodes: gradients from each are summed\n")
    return text


def step_details(graph: Graph | None, step: BackwardStep, total: int) -> Text:
    """The chain rule at one node of the slow-motion backward, with numbers."""
    text = Text()
    text.append(f"backward step {step.index + 1}/{total}: ", style="bold reverse")
    text.append_text(literal(f" {step.label}  {step.name}  #{step.node}\n", "bold"))
    text.append(f"incoming grad (dloss/dout): {fmt.tensor(step.grad_in, limit=8)}\n")
    if step.is_leaf:
        line = (
            f"{step.param or step.label}.grad: {fmt.tensor(step.grad_before)} "
            f"+ {fmt.tensor(step.grad_in)} = {fmt.tensor(step.grad_after)}\n"
        )
        text.append_text(literal(line, "bold $text-success"))
        return text
    if step.derivative:
        text.append(f"local derivative: {step.derivative}\n")
    for (target, grad), local in zip(step.outputs, step.local, strict=False):
        if target is None:
            continue
        label = graph.nodes[target].label if graph is not None and target in graph.nodes else ""
        line = f"→ #{target} {label}: "
        if local is not None:
            line += f"{fmt.tensor(step.grad_in, limit=4)} · {fmt.tensor(local, limit=4)} = "
        text.append_text(literal(line + fmt.tensor(grad, limit=8) + "\n", "$text-success"))
    return text


def _same_shape(a: Graph, b: Graph) -> bool:
    """The same nodes (ids, kinds, modules) and edges: a tree of `a` fits `b` as it is."""
    if a.root != b.root or a.edges != b.edges or a.nodes.keys() != b.nodes.keys():
        return False
    pairs = zip(a.nodes.values(), b.nodes.values(), strict=True)
    return all(_kind(n) == _kind(m) for n, m in pairs)


def _kind(n: Node) -> tuple[object, ...]:
    return (n.name, n.label, n.param, n.module, n.inputs)


class GraphTree(Tree[str]):
    """The graph's nodes, expandable from the loss down to the parameter leaves."""

    BINDINGS = [Binding("m", "toggle_modules", "by module", tooltip="group nodes by module")]

    by_module: reactive[bool] = reactive(False)
    """Show the nodes grouped under the module that produced them."""
    empty = "no loss yet"
    """What the root says when there is no graph."""

    class Highlighted(Message):
        """A graph node was highlighted; `node_id` is None for module headers and the root."""

        def __init__(self, node_id: str | None) -> None:
            super().__init__()
            self.node_id = node_id

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("no loss yet: press f", **kwargs)
        self.graph: Graph | None = None
        self._parents: dict[str, str | None] = {}
        self._populated: set[int] = set()
        self._references: set[int] = set()
        """The tree nodes shown as a reference to a node shown elsewhere (by id)."""

    def show(self, graph: Graph | None) -> bool:
        """Show a graph; True when the tree was kept (the same shape, relabelled)."""
        old, self.graph = self.graph, graph
        if graph is not None and old is not None and _same_shape(old, graph):
            self._relabel()  # the loop's next graph: same nodes, new numbers (no rebuild)
            return True
        self._parents = canonical_parents(graph) if graph is not None else {}
        if graph is not None and len(graph) > LARGE and graph.modules():
            self.set_reactive(GraphTree.by_module, True)
        self._rebuild()
        return False

    def _relabel(self) -> None:
        """New labels on the nodes shown, keeping what is expanded, selected and scrolled."""
        graph = self.graph
        assert graph is not None
        loss = fmt.tensor(graph.loss) if graph.loss is not None else ""
        self.root.set_label(Text(f"loss = {loss}   ({len(graph)} nodes)"))
        variables = self.app.theme_variables
        stack = list(self.root.children)
        while stack:
            node = stack.pop()
            stack.extend(node.children)
            if node.data in graph.nodes:
                label = node_label(graph, graph.nodes[node.data], id(node) in self._references)
                node.set_label(themed(label, variables, one_line=True))

    def relabel(self, graph: Graph) -> None:
        """Show another state of the same graph (the slow motion's flow up to a step): the
        labels of the nodes built so far change, expansion and cursor stay."""
        self.graph = graph
        self._relabel()

    def watch_by_module(self) -> None:
        self._rebuild()

    def action_toggle_modules(self) -> None:
        self.by_module = not self.by_module

    def _rebuild(self) -> None:
        self.clear()
        self._populated.clear()
        self._references.clear()
        graph = self.graph
        if graph is None or graph.root is None:
            self.root.set_label("no graph: the loss has no grad_fn" if graph else self.empty)
            return
        size = f"{len(graph)} nodes"
        loss = fmt.tensor(graph.loss) if graph.loss is not None else ""
        self.root.set_label(Text(f"loss = {loss}   ({size})"))
        self._populated.add(id(self.root))
        if self.by_module:
            for module, ids in graph.by_module().items():
                name = printable(module, one_line=True) if module else "(outside modules)"
                label = Text.assemble((name, "bold"), f"  {len(ids)}")
                self.root.add(label, data=f"{MODULE_PREFIX}{module or ''}")
        else:
            self._add_graph_node(self.root, graph.root)
            self._expand_small(self.root)
        self.root.expand()

    def _expand_small(self, start: TreeNode[str]) -> None:
        """Open small graphs fully and the top levels of large ones."""
        assert self.graph is not None
        depth_limit = 100 if len(self.graph) <= 80 else 3
        stack = [(start, 0)]
        while stack:
            node, depth = stack.pop()
            if depth >= depth_limit:
                continue
            if node.allow_expand:
                self._populate(node)
                node.expand()
            stack.extend((child, depth + 1) for child in node.children)

    def _add_graph_node(self, parent: TreeNode[str], nid: str, reference: bool = False) -> None:
        assert self.graph is not None
        node = self.graph.nodes[nid]
        variables = self.app.theme_variables
        label = themed(node_label(self.graph, node, reference), variables, one_line=True)
        if reference or not self.graph.inputs(nid):
            leaf = parent.add_leaf(label, data=nid)
            if reference:
                self._references.add(id(leaf))
        else:
            parent.add(label, data=nid)

    def _populate(self, tree_node: TreeNode[str]) -> None:
        if id(tree_node) in self._populated or self.graph is None:
            return
        self._populated.add(id(tree_node))
        data = tree_node.data or ""
        if data.startswith(MODULE_PREFIX):
            module = data.removeprefix(MODULE_PREFIX) or None
            for nid in self.graph.by_module().get(module, []):
                label = node_label(self.graph, self.graph.nodes[nid])
                tree_node.add_leaf(themed(label, self.app.theme_variables, True), data=nid)
            return
        if data not in self.graph.nodes:  # the root label, or a node of a replaced graph
            return
        shown: set[str] = set()
        for child in self.graph.inputs(data):
            real = self._parents.get(child) == data and child not in shown
            shown.add(child)
            self._add_graph_node(tree_node, child, reference=not real)

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[str]) -> None:
        self._populate(event.node)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[str]) -> None:
        data = event.node.data
        valid = data is not None and self.graph is not None and data in self.graph.nodes
        self.post_message(self.Highlighted(data if valid else None))

    def reveal(self, nid: str) -> bool:
        """Expand the path to a node's canonical place, select it and scroll to it."""
        if self.graph is None or nid not in self._parents:
            return False
        if self.by_module:
            self.by_module = False
        chain = [nid]
        while (parent := self._parents.get(chain[-1])) is not None:
            chain.append(parent)
        node = self.root
        for step in reversed(chain):
            self._populate(node)
            node.expand()
            found = next((c for c in node.children if c.data == step), None)
            if found is None:
                return False
            node = found
        self._populate(node)
        self.move_cursor(node)
        self.scroll_to_node(node)
        return True


class GraphPanel(Vertical):
    """The tree or the DAG (`g` toggles), and below them the details of the selected node
    (or the replay step). Both views render the same Graph and share the selection."""

    BORDER_TITLE = "Graph"
    BINDINGS = [Binding("g", "toggle_view", "DAG/tree", tooltip="the graph as a DAG ⇄ tree")]

    # The panel's reactives repaint nothing of the panel itself (its border): the tree, the
    # DAG and the details repaint themselves where they change.
    dag: reactive[bool] = reactive(False, repaint=False)
    """True when the graph is drawn as a DAG (boxes and arrows) instead of the tree."""
    _selected: str | None = None
    """The node selected in either view (kept across a switch of views)."""
    EMPTY_HINT = "press f to build the graph"
    """Shown before there is a graph (the trace app's says what makes one there)."""
    KEYS_HINT = "B backward in slow motion"
    """The last words of the keys hint (the app's own graph keys)."""

    graph: reactive[Graph | None] = reactive(None, always_update=True, repaint=False)
    """The extracted graph of the current loss (None before the first forward)."""
    error: reactive[str | None] = reactive(None, init=False, repaint=False)
    """Why the current loss has no graph (its extraction failed), shown instead of it."""
    step: reactive[tuple[int, tuple[BackwardStep, ...]] | None] = reactive(None, repaint=False)
    """The slow-motion replay: (index of the current step, all steps); None when off."""

    def compose(self) -> ComposeResult:
        yield GraphTree(id="graph-tree")
        yield DagView(id="graph-dag")
        with VerticalScroll(id="node-details"):
            yield Static(id="node-details-text")

    @property
    def tree(self) -> GraphTree:  # type: ignore[override]  # DOMNode.tree: a debug view
        return self.query_one(GraphTree)

    @property
    def dag_view(self) -> DagView:
        return self.query_one(DagView)

    @property
    def view(self) -> GraphTree | DagView:
        """The view on screen: the tree or the DAG."""
        return self.dag_view if self.dag else self.tree

    def watch_graph(self, graph: Graph | None) -> None:
        kept = self.tree.show(self._shown())
        if self.dag:
            self.dag_view.show(self._shown(), folded=self.tree.by_module)
        node = self.tree.cursor_node
        shown = node.data if kept and not self.dag and node is not None else None
        self._details(shown if graph is not None and shown in graph.nodes else None)

    def watch_error(self, error: str | None) -> None:
        missing = "no graph: its extraction failed (see below)"
        self.tree.empty = missing if error else GraphTree.empty
        self.dag_view.empty = missing if error else DagView.empty
        if self.graph is None:
            self.watch_graph(None)
        elif self.step is None:
            self._details(None)

    def _shown(self) -> Graph | None:
        """The graph as the views draw it: during the slow motion, with the gradients
        computed up to the current step only."""
        if self.graph is None or self.step is None:
            return self.graph
        return self.graph.at_step(self.step[0])

    def action_toggle_view(self) -> None:
        self.dag = not self.dag

    def watch_dag(self, dag: bool) -> None:
        """Switch views, keeping the selected node (and the focus, when the panel had it)."""
        had_focus = self.has_focus_within
        selected = self._selected
        self.set_class(dag, "-dag")
        if dag:
            self.dag_view.show(self._shown(), folded=self.tree.by_module)
            if selected is not None:
                self.dag_view.select(selected)
        elif selected is not None:
            self.tree.reveal(selected)
        if had_focus:
            self.view.focus()

    def reveal(self, nid: str) -> None:
        """Select a node in the view on screen (the slow motion and the params' enter)."""
        self._selected = nid
        if self.dag:
            self.dag_view.select(nid)
        else:
            self.tree.reveal(nid)

    def on_dag_view_highlighted(self, message: DagView.Highlighted) -> None:
        if message.node_id is not None:
            self._selected = message.node_id
        if self.step is None:
            self._details(message.node_id)

    def watch_step(self, step: tuple[int, tuple[BackwardStep, ...]] | None) -> None:
        shown = self._shown()
        if shown is not None:
            self.tree.relabel(shown)
            self.dag_view.relabel(shown, redraw=self.dag and step is None)
        if step is None:
            self.remove_class("-replay")
            self._details(None)
            return
        index, steps = step
        self.add_class("-replay")
        current = steps[index]
        self.reveal(current.node)
        text = step_details(self.graph, current, len(steps))
        text.append("\nB or → next node · escape finish", style="dim")
        self._show(text)

    def on_graph_tree_highlighted(self, message: GraphTree.Highlighted) -> None:
        if message.node_id is not None and not self.dag:
            self._selected = message.node_id
        if self.step is None:
            self._details(message.node_id)

    def _details(self, nid: str | None) -> None:
        graph = self.graph
        if graph is None and self.error:
            self._show(literal(self.error, "$text-error"))
        elif graph is None or graph.root is None:
            self._show(Text(self.EMPTY_HINT, style="dim"))
        elif nid is None:
            hint = "↑↓ move · space expand · m group by module · g DAG/tree"
            hint += f" · {self.KEYS_HINT}" if self.KEYS_HINT else ""
            if graph.has_flow:
                hint = "data | grad shown per node after backward · " + hint
            self._show(Text(hint, style="dim"))
        else:
            try:
                text = node_details(graph, graph.nodes[nid])
            except Exception as e:  # arbitrary scenario values: never let one kill the app
                text = literal(f"cannot show #{nid}: {type(e).__name__}: {e}", "dim")
            self._show(text)

    def _show(self, text: Text) -> None:
        widget = self.query_one("#node-details-text", Static)
        widget.update(themed(text, self.app.theme_variables))
