"""The graph panel: navigation, node details, modules, following a parameter, slow motion."""

from __future__ import annotations

from pathlib import Path

from pilot_helpers import press, settle, tree_labels
from textual.widgets import DataTable

from optdbg.engine import Session
from optdbg.tui.app import OptDbgApp
from optdbg.tui.graphview import LARGE, GraphPanel, GraphTree

WIDE = (160, 48)


def details(app: OptDbgApp) -> str:
    return str(app.query_one("#node-details-text").render())


async def test_moving_through_the_tree_shows_each_nodes_details() -> None:
    app = OptDbgApp(Session.open("log_xy"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "f")
        tree = app.query_one(GraphTree)
        tree.focus()
        await press(pilot, "down")  # the loss's node: SumBackward0
        assert "SumBackward0" in details(app)
        await press(pilot, "down", "down")  # log, then mul
        text = details(app)
        assert "MulBackward0" in text and "∂/∂self = other" in text
        assert "saved other (y)" in text and "saved self (x)" in text


async def test_the_next_graph_of_the_loop_relabels_the_tree_in_place() -> None:
    """The loop's next graph has the same nodes: the tree keeps the node the user is on
    and shows the new numbers, exactly as a tree built afresh for that graph."""
    app = OptDbgApp(Session.open("log_xy"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "f", "b")
        tree = app.query_one(GraphTree)
        tree.focus()
        await press(pilot, "down", "down", "down")  # the mul node
        before = tree.cursor_node
        await press(pilot, "s", "z", "f", "b")
        assert tree.cursor_node is before and "MulBackward0" in details(app)
        fresh = GraphTree()
        await app.screen.mount(fresh)
        assert app.view is not None
        fresh.show(app.view.graph)
        await pilot.pause()
        assert tree_labels(tree.root) == tree_labels(fresh.root)
        assert "data" in details(app)


async def test_after_backward_every_node_shows_data_and_grad() -> None:
    app = OptDbgApp(Session.open("log_xy"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "f", "b")
        text = "\n".join(tree_labels(app.query_one(GraphTree).root))
        assert "data" in text and "| grad" in text
        app.query_one(GraphTree).focus()
        await press(pilot, "down", "down", "down", "down")  # the leaf x
        assert "x.grad: None → (11) [0.5, 0.5263" in details(app)


async def test_slow_motion_backward_steps_node_by_node_and_ends_like_backward() -> None:
    reference = Session.open("log_xy")
    reference.forward()
    reference.backward()
    expected = [p.grad for p in reference.snapshot().params]

    app = OptDbgApp(Session.open("log_xy"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "f", "B")
        assert "backward step 1/5" in details(app) and "SumBackward0" in details(app)
        assert app.view is not None and all(p.grad is None for p in app.view.snapshot.params)
        await press(pilot, "right", "right")
        assert "backward step 3/5" in details(app) and "∂/∂other = self" in details(app)
        tree = app.query_one(GraphTree)
        assert tree.cursor_node is not None and tree.cursor_node.data == "n2"
        await press(pilot, "B", "right")
        assert "backward step 5/5" in details(app) and "y.grad: None +" in details(app)
        await press(pilot, "right")
        assert app.replay is None
        assert [p.grad for p in app.view.snapshot.params] == expected


async def test_an_op_during_slow_motion_finishes_the_replay_first() -> None:
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "f", "B", "s")
        assert app.replay is None
        assert app.view is not None and app.view.snapshot.step_count == 1
        assert app.view.snapshot.params[0].value.values == [8.600000381469727, 7.599999904632568]


async def test_nodes_group_by_module() -> None:
    app = OptDbgApp(Session.open("mlp_sequential"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "f")
        tree = app.query_one(GraphTree)
        tree.focus()
        await press(pilot, "m")
        modules = [str(child.label).split()[0] for child in tree.root.children]
        assert modules == ["loss_fn", "model.2", "model.1", "model.0"]
        await press(pilot, "m")
        assert "mseloss" in str(tree.root.children[0].label)


async def test_enter_on_a_parameter_follows_it_to_its_leaf() -> None:
    app = OptDbgApp(Session.open("mlp_sequential"))
    async with app.run_test(size=(100, 30)) as pilot:
        await press(pilot, "f")
        table = app.query_one(DataTable)
        table.focus()
        await press(pilot, "enter")
        assert app.panel == "graph"
        tree = app.query_one(GraphTree)
        graph = app.query_one(GraphPanel).graph
        assert graph is not None and tree.cursor_node is not None
        assert tree.cursor_node.data == graph.leaf("model.0.weight")
        assert "model.0.weight" in details(app)


async def test_a_large_graph_opens_grouped_by_module(tmp_path: Path) -> None:
    path = tmp_path / "deep.py"
    path.write_text(
        "import torch\nfrom torch import nn\n"
        "model = nn.Sequential(*[m for _ in range(120) for m in (nn.Linear(4, 4), nn.Tanh())])\n"
        "loss_fn = nn.MSELoss()\n"
        "data = [(torch.randn(8, 4), torch.randn(8, 4))]\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.01)\n"
    )
    app = OptDbgApp(Session.open(path))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "f")
        tree = app.query_one(GraphTree)
        graph = app.query_one(GraphPanel).graph
        assert graph is not None and len(graph) > LARGE
        assert tree.by_module
        assert len(tree.root.children) == len(graph.by_module())
        assert all(not child.is_expanded for child in tree.root.children)
        await settle(pilot)
