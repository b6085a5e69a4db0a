"""Detached copies that share what they can, and what they hold: tensors compared by
their bits, the scenario's plain data (numbers, strings and containers of them), the memory
of Python objects."""

from __future__ import annotations

import copy
import sys
from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from ..snapshot import same_bits as same_bits


def tensor_bytes(t: torch.Tensor) -> int:
    return t.nelement() * t.element_size()


def clone(t: torch.Tensor) -> torch.Tensor:
    return t.detach().clone()


def keep(live: torch.Tensor, previous: torch.Tensor | None) -> torch.Tensor:
    """A detached copy of `live`, sharing `previous` when it holds the same bits."""
    if previous is not None and same_bits(live, previous):
        return previous
    return clone(live)


def clone_tree(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return clone(value)
    if isinstance(value, dict):
        return {k: clone_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(clone_tree(v) for v in value)
    return value


def tensors_in(value: Any) -> Iterator[torch.Tensor]:
    """Every tensor in (nested) dicts, lists and tuples."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from tensors_in(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from tensors_in(v)


SCALARS = (bool, int, float, complex, str, bytes, type(None))
_CONTAINERS = (list, dict, set, deque)
_MAX_ITEMS = 100_000
"""A scenario's container with more plain items than this is not copied into checkpoints."""


def _plain_data(value: Any, budget: list[int]) -> bool:
    """Whether `value` holds only numbers, strings and containers of them (within budget)."""
    budget[0] -= 1
    if budget[0] < 0:
        return False
    if isinstance(value, SCALARS):
        return True
    if isinstance(value, dict):
        return all(_plain_data(k, budget) and _plain_data(v, budget) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset | deque):
        return all(_plain_data(v, budget) for v in value)
    return False


def scenario_containers(namespace: dict[str, Any]) -> dict[str, Any]:
    """Copies of the scenario's own lists, dicts, sets and deques of plain data (such as a
    `val_losses` list that forward appends to), by global name."""
    return {
        k: copy.deepcopy(v)
        for k, v in namespace.items()
        if not k.startswith("__") and type(v) in _CONTAINERS and _plain_data(v, [_MAX_ITEMS])
    }


def restore_containers(namespace: dict[str, Any], saved: dict[str, Any]) -> None:
    """Put the saved contents back into the same objects (aliases see them too)."""
    for key, value in saved.items():
        live: Any = namespace.get(key)
        fresh = copy.deepcopy(value)
        if type(live) is not type(fresh):
            namespace[key] = fresh
        elif isinstance(live, dict | set):
            live.clear()
            live.update(fresh)
        else:  # list or deque
            live.clear()
            live.extend(fresh)


def plain_attr(key: str, value: Any) -> bool:
    return isinstance(value, SCALARS) and not key.startswith("__")


class PythonState:
    """The Python objects of a checkpoint (counters, detector state), sized for the budget."""

    def __init__(self, live: set[int], *parts: Any) -> None:
        self.nbytes = sum(py_bytes(p, live) for p in parts)


def py_bytes(obj: Any, live: set[int], depth: int = 0) -> int:
    """Roughly the memory of plain Python data (tensors and arrays count their buffers;
    objects in `live`, shared with the running session, count nothing)."""
    if id(obj) in live:
        return 0
    if isinstance(obj, torch.Tensor):
        return tensor_bytes(obj)
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    size = sys.getsizeof(obj, 64)
    if depth > 8:
        return size
    if isinstance(obj, dict):
        return size + sum(
            py_bytes(k, live, depth + 1) + py_bytes(v, live, depth + 1) for k, v in obj.items()
        )
    if isinstance(obj, list | tuple | set | frozenset | deque):
        return size + sum(py_bytes(v, live, depth + 1) for v in obj)
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return size + py_bytes(vars(obj), live, depth + 1)
    return size
