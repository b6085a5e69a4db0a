"""Extract the autograd graph of a loss into plain data (nodes, edges, labels, values).

Extraction is separate from drawing: the TUI's graph panel and the DOT/PNG export
both render the `Graph` returned here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import torch

from .snapshot import TensorView, plain, view

_BACKWARD_SUFFIX = re.compile(r"Backward\d*$")


@dataclass(frozen=True)
class Saved:
    """A value the node saved for backward; `freed` once backward released it."""

    name: str
    value: Any = None
    freed: bool = False


@dataclass(frozen=True)
class Node:
    id: str
    name: str
    """grad_fn class name, e.g. MulBackward0, AccumulateGrad."""
    label: str
    """Friendly label: mul, pow, addmm; the parameter name for a leaf."""
    param: str | None = None
    value: TensorView | None = None
    """For leaves: the tensor's value when extracted."""
    saved: tuple[Saved, ...] = field(default_factory=tuple)

    @property
    def is_leaf(self) -> bool:
        return self.name == "AccumulateGrad"


@dataclass(frozen=True)
class Graph:
    root: str | None
    nodes: dict[str, Node]
    edges: tuple[tuple[str, str], ...]
    """(consumer, input): the gradient flows from the first to the second."""
    loss: TensorView | None = None

    def inputs(self, node_id: str) -> list[str]:
        return [b for a, b in self.edges if a == node_id]

    def __len__(self) -> int:
        return len(self.nodes)


def friendly(name: str) -> str:
    return _BACKWARD_SUFFIX.sub("", name).lower() or name


def extract(loss: torch.Tensor, names: dict[str, torch.Tensor] | None = None) -> Graph:
    """Walk loss.grad_fn / next_functions into a Graph. `names` maps names to leaf tensors."""
    by_id = {id(t): n for n, t in (names or {}).items()}
    root = loss.grad_fn
    if root is None:
        return Graph(None, {}, (), view(loss))
    ids: dict[int, str] = {}
    nodes: dict[str, Node] = {}
    edges: list[tuple[str, str]] = []
    stack = [root]
    ids[id(root)] = "n0"
    while stack:
        fn = stack.pop()
        nid = ids[id(fn)]
        nodes[nid] = _node(nid, fn, by_id)
        for child, _ in fn.next_functions:
            if child is None:
                continue
            if id(child) not in ids:
                ids[id(child)] = f"n{len(ids)}"
                stack.append(child)
            edges.append((nid, ids[id(child)]))
    return Graph("n0", nodes, tuple(edges), view(loss))


def _node(nid: str, fn: Any, by_id: dict[int, str]) -> Node:
    name = type(fn).__name__
    variable = getattr(fn, "variable", None)
    if isinstance(variable, torch.Tensor):
        param = by_id.get(id(variable))
        label = param or f"leaf {tuple(variable.shape)}"
        return Node(nid, name, label, param=param, value=view(variable))
    return Node(nid, name, friendly(name), saved=tuple(_saved(fn)))


def _saved(fn: Any) -> list[Saved]:
    found = []
    for attr in dir(fn):
        if not attr.startswith("_saved_"):
            continue
        key = attr.removeprefix("_saved_")
        try:
            value = getattr(fn, attr)
        except RuntimeError:
            found.append(Saved(key, freed=True))
            continue
        found.append(Saved(key, plain(value)))
    return found
