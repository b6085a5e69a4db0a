"""The manual update form: a scenario's own `step()` and `zero_grad()` instead of an optimizer.

`ManualUpdate` wraps them as a `torch.optim.Optimizer` over the scenario's parameters, so
the Session, the history, the detectors and the exports treat both forms alike; its
`step()` calls the scenario's `step()` and nothing else (no `torch.no_grad()` of its own:
forgetting it in the scenario fails as in a plain loop). `find_rule` reads the source of
`step()` for the plain rule `p -= lr * p.grad`, so the update panel can write it out.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

NAME = "step()"
"""How the update is named where an optimizer's class name would be shown."""


class ManualUpdate(torch.optim.Optimizer):
    """An optimizer whose step and zero_grad are the scenario's own functions."""

    def __init__(
        self,
        params: list[torch.Tensor],
        step: Callable[[], Any],
        zero_grad: Callable[[], Any] | None,
    ) -> None:
        super().__init__(params, {})
        self.scenario_step = step
        self.scenario_zero_grad = zero_grad

    def step(self, closure: Callable[[], float] | None = None) -> None:  # type: ignore[override]
        self.scenario_step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        if self.scenario_zero_grad is None:
            for group in self.param_groups:
                for p in group["params"]:
                    p.grad = None
        else:
            self.scenario_zero_grad()


@dataclass(frozen=True)
class Rule:
    """`target -= coefficient * target.grad` found in step(), for one parameter name (or for
    every parameter, through a loop variable)."""

    line: int
    text: str
    """The statement as written."""
    coefficient: str
    """The coefficient's source (e.g. `learning_rate`)."""


@dataclass(frozen=True)
class StepSource:
    """The lines of the scenario's step() and the plain rules found in them."""

    first_line: int
    lines: tuple[str, ...]
    rules: dict[str, Rule]
    """By parameter name; the key "*" holds a rule written on a loop variable."""


def read_step(fn: Callable[..., Any]) -> StepSource | None:
    """The source of `fn` and its `p -= lr * p.grad` statements (None without source)."""
    try:
        lines, first = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        return None
    source = textwrap.dedent("".join(lines))
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return StepSource(first, tuple(line.rstrip("\n") for line in lines), {})
    rules: dict[str, Rule] = {}
    loops = {
        node.target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.For) and isinstance(node.target, ast.Name)
    }
    for node in ast.walk(tree):
        found = _plain_rule(node)
        if found is None or not isinstance(node, ast.AugAssign):
            continue
        name, coefficient = found
        key = "*" if name in loops else name
        rules.setdefault(key, Rule(first + node.lineno - 1, ast.unparse(node), coefficient))
    return StepSource(first, tuple(line.rstrip("\n") for line in lines), rules)


def _plain_rule(node: ast.AST) -> tuple[str, str] | None:
    """(name, coefficient) for `name -= c * name.grad` (or `name.data -= ...`)."""
    if not (isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Sub)):
        return None
    target: ast.expr = node.target
    if isinstance(target, ast.Attribute) and target.attr == "data":
        target = target.value
    if not isinstance(target, ast.Name):
        return None
    value = node.value
    if not (isinstance(value, ast.BinOp) and isinstance(value.op, ast.Mult)):
        return None
    for coef, grad in ((value.left, value.right), (value.right, value.left)):
        if (
            isinstance(grad, ast.Attribute)
            and grad.attr == "grad"
            and isinstance(grad.value, ast.Name)
            and grad.value.id == target.id
            and isinstance(coef, ast.Name | ast.Constant | ast.Attribute)
        ):
            return target.id, ast.unparse(coef)
    return None


def coefficient_value(expr: str, namespace: dict[str, Any]) -> float | None:
    """The number a rule's coefficient names now (a global or a literal), else None."""
    try:
        value = ast.literal_eval(expr)
    except (ValueError, SyntaxError):
        value = namespace.get(expr)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
