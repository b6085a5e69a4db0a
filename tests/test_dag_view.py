"""The graph panel's DAG view (`g`): snapshots of the drawing, and its keys under Pilot."""

from __future__ import annotations

from pathlib import Path

import pytest
from pilot_helpers import press, settle
from test_snapshots import keys

from optdbg.engine import Session
from optdbg.tui.app import OptDbgApp
from optdbg.tui.dagview import GROUP, LOSS, boxes_and_edges
from optdbg.tui.graphview import GraphPanel

DATA = Path(__file__).resolve().parent / "data"
SIZES = [(100, 30), (160, 48)]


@pytest.mark.parametrize("size", SIZES)
def test_dag_of_the_dag_toy(snap_compare, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app = OptDbgApp(Session.open("dag_toy"))
    assert snap_compare(app, terminal_size=size, run_before=keys("f", "b", "3", "g"))


@pytest.mark.parametrize("size", SIZES)
def test_dag_draws_a_shared_node_once(snap_compare, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app = OptDbgApp(Session.open(DATA / "shared_node.py"))
    assert snap_compare(app, terminal_size=size, run_before=keys("f", "b", "3", "g"))


@pytest.mark.parametrize("size", SIZES)
def test_dag_of_the_mlp_folded_by_module(snap_compare, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app = OptDbgApp(Session.open("mlp_sequential"))
    run = keys("f", "b", "3", "g", "m", "up", "up", "enter")  # fold all, open model.2
    assert snap_compare(app, terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_dag_of_a_300_node_graph_opens_folded(snap_compare, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app = OptDbgApp(Session.open(DATA / "deep_300.py"))
    assert snap_compare(app, terminal_size=size, run_before=keys("f", "3", "g"))


def test_shared_node_is_one_box_with_two_arrows() -> None:
    session = Session.open(DATA / "shared_node.py")
    session.capture_graph = True
    session.perform("f")
    graph = session.graph()
    assert graph is not None
    boxes, edges = boxes_and_edges(graph, set())
    shared = [n for n in graph.nodes if len(set(graph.consumers(n))) == 2]
    assert len(shared) == 1 and shared[0] in boxes
    assert sum(1 for a, _ in edges if a == shared[0]) == 2  # one arrow to each consumer
    assert (graph.root, LOSS) in edges  # the loss at the bottom


def test_big_graph_folds_by_module_into_one_box_each() -> None:
    session = Session.open(DATA / "deep_300.py")
    session.capture_graph = True
    session.perform("f")
    graph = session.graph()
    assert graph is not None and len(graph) > 300
    boxes, _ = boxes_and_edges(graph, set(graph.modules()))
    assert {b for b in boxes if b.startswith(GROUP)} == {f"{GROUP}{m}" for m in graph.modules()}
    assert len(boxes) < len(graph) // 2


async def test_dag_keys_move_fold_and_follow_the_slow_motion() -> None:
    app = OptDbgApp(Session.open("mlp_sequential"))
    async with app.run_test(size=(160, 48)) as pilot:
        await press(pilot, "f", "3", "g")
        panel = app.query_one(GraphPanel)
        dag = panel.dag_view
        assert panel.dag and dag.has_focus
        assert dag.selected == LOSS  # the loss, at the bottom, is selected first
        await press(pilot, "up")
        assert dag.selected == app.view.graph.root  # type: ignore[union-attr]
        await press(pilot, "m")
        assert dag.folded == set(app.view.graph.modules())  # type: ignore[union-attr]
        await press(pilot, "g")  # back to the tree, keeping the node
        assert not panel.dag and panel.tree.has_focus
        await press(pilot, "g", "B")  # slow motion: the DAG follows each step
        assert app.replay is not None
        first = app.replay[1][0].node
        assert dag.selected == first
        await press(pilot, "B")
        assert dag.selected == app.replay[1][1].node
        await press(pilot, "escape")
        await settle(pilot)
        assert app.replay is None
