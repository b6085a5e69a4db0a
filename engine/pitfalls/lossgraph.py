"""Reading the loss function off the loss's autograd graph: node names and saved tensors'
shapes only (no values copied, nothing recomputed), a few nodes from the root."""

from __future__ import annotations

import ast
import inspect
import math
import re
import textwrap
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

import torch

from .context import Inplace, LossFacts

BUDGET = 64
"""Nodes visited from the loss's root at most: loss functions sit next to it."""

_REGRESSION = {
    "MseLossBackward0": "MSELoss",
    "SmoothL1LossBackward0": "SmoothL1Loss",
    "HuberLossBackward0": "HuberLoss",
}
_REDUCTIONS = {"MeanBackward0", "MeanBackward1", "SumBackward0", "SumBackward1"}


def _inputs(node: Any) -> list[Any]:
    return [n for n, _ in node.next_functions if n is not None]


def _nodes(root: Any) -> Iterator[Any]:
    """The graph's nodes breadth-first from the root, at most BUDGET of them."""
    seen = {id(root)}
    queue = deque([root])
    count = 0
    while queue and count < BUDGET:
        node = queue.popleft()
        count += 1
        yield node
        for n in _inputs(node):
            if id(n) not in seen:
                seen.add(id(n))
                queue.append(n)


def loss_facts(loss: torch.Tensor) -> LossFacts | None:
    """What the graph of `loss` says about its loss function, or None when it has none."""
    root = loss.grad_fn
    if root is None:
        return None
    chance = classes = None
    probs_into = None
    broadcast = None
    for node in _nodes(root):
        name = node.name()
        if name == "NllLossBackward0":
            found = _nll(node, is_root=node is root)
            if found is not None:
                classes, node_chance, into = found
                chance = node_chance if node is root else chance
                probs_into = probs_into or into
        elif name in _REGRESSION or name in _REDUCTIONS:
            broadcast = broadcast or _broadcast(node)
    if chance is None and classes is None and probs_into is None and broadcast is None:
        return None
    return LossFacts(chance, classes, probs_into, broadcast)


def _nll(node: Any, is_root: bool) -> tuple[int, float | None, str | None] | None:
    try:
        logp = node._saved_self
        reduction = int(node._saved_reduction)
    except RuntimeError:  # freed: the graph was backwarded already
        return None
    classes = int(logp.shape[1] if logp.dim() >= 2 else logp.shape[0])
    if classes < 2:
        return None
    chance = None
    if is_root and reduction in (1, 2):
        chance = math.log(classes)
        if reduction == 2:
            target = node._saved_target
            chance *= int((target != int(node._saved_ignore_index)).sum())
    into = None
    inputs = _inputs(node)
    below = inputs[0].name() if inputs else ""
    if below == "SoftmaxBackward0":
        into = "Softmax into NLLLoss (it expects log-probabilities)"
    elif below == "LogSoftmaxBackward0":
        deeper = _inputs(inputs[0])
        kind = deeper[0].name() if deeper else ""
        if kind in ("SoftmaxBackward0", "LogSoftmaxBackward0"):
            what = "Softmax" if kind == "SoftmaxBackward0" else "LogSoftmax"
            into = f"{what} into CrossEntropyLoss (it applies log_softmax itself)"
    return classes, chance, into


def _broadcast(node: Any) -> tuple[str, tuple[int, ...], tuple[int, ...]] | None:
    """A regression loss whose input autograd expanded (F.mse_loss/l1_loss broadcast)."""
    name = node.name()
    shaped = node  # the node that saved a tensor of the broadcast shape
    if name in _REDUCTIONS:  # l1_loss: mean(abs(input - target))
        inputs = _inputs(node)
        if not inputs or inputs[0].name() != "AbsBackward0":
            return None
        shaped = inputs[0]
        subs = _inputs(shaped)
        if not subs or subs[0].name() != "SubBackward0":
            return None
        node, loss = subs[0], "L1Loss"
    else:
        loss = _REGRESSION[name]
    expand = next((n for n in _inputs(node) if n.name() == "ExpandBackward0"), None)
    if expand is None:
        return None
    try:
        before = tuple(int(d) for d in expand._saved_self_sym_sizes)
        after = tuple(int(d) for d in shaped._saved_self.shape)
    except (RuntimeError, AttributeError):  # freed, or another node than expected
        return None
    return (loss, before, after) if after != before else None


# ----------------------------------------------------------------- in-place ops

_TENSOR = re.compile(r"\[torch\.\w+ \[[^\]]*\]\], which is output \d+ of \w+")
_VERSION = re.compile(r"is at version \d+; expected version \d+")


def inplace(message: str, functions: Iterable[Any], modules: Iterable[tuple[str, Any]]) -> Inplace:
    """What PyTorch's version-counter error names, and the in-place ops of the forward's code
    (`functions`: the scenario's forward and the modules' forward methods) that could have
    made it: augmented assignments, item assignments, `x.op_()` calls, `inplace=True`
    modules."""
    tensor, version = _TENSOR.search(message), _VERSION.search(message)
    sites: list[tuple[str, str]] = []
    for fn in functions:
        sites += _sites(fn)
    for name, module in modules:
        if getattr(module, "inplace", False) is True:
            sites.append((name, f"{type(module).__name__}(inplace=True)"))
    return Inplace(
        tensor.group(0) if tensor else "a tensor saved for backward",
        version.group(0) if version else "",
        tuple(dict.fromkeys(sites)),
    )


def _sites(fn: Any) -> list[tuple[str, str]]:
    try:
        lines, start = inspect.getsourcelines(fn)
        file = inspect.getsourcefile(fn) or "?"
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError):
        return []
    out = []
    for node in ast.walk(tree):
        if _is_inplace(node):
            line = start + node.lineno - 1  # type: ignore[attr-defined]
            text = lines[node.lineno - 1].strip()  # type: ignore[attr-defined]
            out.append((f"{file.rsplit('/', 1)[-1]}:{line}", text))
    return sorted(set(out), key=lambda s: int(s[0].rsplit(":", 1)[1]))


def _is_inplace(node: ast.AST) -> bool:
    if isinstance(node, ast.AugAssign):
        return True
    if isinstance(node, ast.Assign):
        return any(isinstance(t, ast.Subscript) for t in node.targets)
    if isinstance(node, ast.Call):
        fn = node.func
        if isinstance(fn, ast.Attribute):
            attr = fn.attr
            if attr.endswith("_") and not attr.endswith("__") and attr != "requires_grad_":
                return True
        return any(
            k.arg == "inplace" and isinstance(k.value, ast.Constant) and k.value.value is True
            for k in node.keywords
        )
    return False
