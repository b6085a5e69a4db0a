"""`--set NAME=VALUE`: replace the literal of a top-level `NAME = <literal>` before it runs.

The replacement is made in the parsed tree (the new constant takes the old one's position),
so every line number in a later error or traceback stays that of the file on disk.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import hyper
from .builtins import resolve


class OverrideError(ValueError):
    """A `--set` that cannot apply: the message names the assignable names."""


def parse_value(text: str) -> Any:
    """A Python literal typed by the user (`0.25`, `10`, `(0.9, 0.99)`, `True`, `'sum'`),
    read by the one parser of typed values (`hyper.parse_value`); OverrideError, in
    `--set`'s words, when it is not one."""
    try:
        return hyper.parse_value(text)
    except hyper.HyperError:
        raise OverrideError(
            f"{text!r} is not a Python literal: give a number, a string in quotes, "
            "True/False/None, or a tuple/list of those, e.g. lr=0.25 or betas=(0.9,0.99)"
        ) from None


def parse_values(text: str) -> list[Any]:
    """The comma-separated literals of `compare --set NAME=V1,V2,...` (commas inside
    brackets or quotes belong to their value: `betas=(0.9,0.99),(0.8,0.9)` is two values)."""
    try:
        tree = ast.parse(f"[{text}]", mode="eval")
    except SyntaxError:
        tree = None
    if tree is None or not isinstance(tree.body, ast.List) or not tree.body.elts:
        raise OverrideError(
            f"{text!r} is not a comma-separated list of Python literals, e.g. 0.1,10,0.25"
        )
    values = []
    for element in tree.body.elts:
        segment = ast.get_source_segment(f"[{text}]", element) or ""
        values.append(parse_value(segment))
    return values


def split_setting(text: str) -> tuple[str, str]:
    """`NAME=VALUE` into its two parts (OverrideError when there is no `=` or no name)."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier() or not value.strip():
        raise OverrideError(f"{text!r} is not NAME=VALUE, e.g. --set lr=0.25")
    return name, value


def assignable(tree: ast.Module) -> dict[str, ast.expr]:
    """Top-level `NAME = <literal>` (or `NAME: T = <literal>`) assignments: name -> value
    node of its last such assignment."""
    found: dict[str, ast.expr] = {}
    for node in tree.body:
        target, value = _single_target(node)
        if target is not None and value is not None and _is_literal(value):
            found[target] = value
    return found


def _single_target(node: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
        return (target.id if isinstance(target, ast.Name) else None), node.value
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id, node.value
    return None, None


def _is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def apply(tree: ast.Module, overrides: Mapping[str, Any], file: str) -> ast.Module:
    """Replace the literals named in `overrides` in `tree` (in place, and returned).

    A float literal set to an integer stays a float (`lr = 0.1` with `--set lr=10` is
    10.0), as the user means and as the scenario's arithmetic expects."""
    if not overrides:
        return tree
    names = assignable(tree)
    unknown = [n for n in overrides if n not in names]
    if unknown:
        listed = ", ".join(sorted(names)) if names else "none (it has no `NAME = <literal>`)"
        raise OverrideError(
            f"--set {unknown[0]}: {file} has no top-level assignment `{unknown[0]} = "
            f"<literal>`; the names that can be set are: {listed}"
        )
    for node in tree.body:
        target, value = _single_target(node)
        if target is not None and value is not None and target in overrides:
            if value is not names[target]:
                continue  # an earlier assignment of the name: only the last one is set
            replacement = _constant(_coerce(overrides[target], ast.literal_eval(value)))
            for part in ast.walk(replacement):
                ast.copy_location(part, value)
            if isinstance(node, ast.Assign | ast.AnnAssign):
                node.value = replacement
    return tree


def _coerce(new: Any, old: Any) -> Any:
    if isinstance(old, float) and isinstance(new, int) and not isinstance(new, bool):
        return float(new)
    return new


def _constant(value: Any) -> ast.expr:
    """An expression node that evaluates to the literal `value` (containers included)."""
    if isinstance(value, tuple):
        return ast.Tuple(elts=[_constant(v) for v in value], ctx=ast.Load())
    if isinstance(value, list):
        return ast.List(elts=[_constant(v) for v in value], ctx=ast.Load())
    if isinstance(value, set):
        return ast.Set(elts=[_constant(v) for v in value])
    if isinstance(value, dict):
        return ast.Dict(
            keys=[_constant(k) for k in value], values=[_constant(v) for v in value.values()]
        )
    return ast.Constant(value=value)


def describe(overrides: Mapping[str, Any]) -> str:
    """`lr=0.25, batch_size=10`: how a variant is named after its settings."""
    return ", ".join(f"{k}={v!r}" for k, v in overrides.items())


def check(spec: str | Path, overrides: Mapping[str, Any]) -> None:
    """Raise OverrideError now if `overrides` cannot apply to the scenario file (read and
    parsed, not run); a file that cannot be read or parsed is left to the loader's message."""
    if not overrides:
        return
    path = resolve(spec)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return
    apply(tree, overrides, str(path))
