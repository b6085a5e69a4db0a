"""Running until something happens: breakpoint conditions and the continue loop.

A condition is checked right after every op; `run_until` performs whole iterations (the next
ops of the cycle forward → backward → step → zero_grad) and stops right after the first op at
which the condition holds, when `max_iterations` iterations are done, when a stop flag is set
(from any thread), or when an op fails.

User conditions are expressions over a few names (see `NAMES`), parsed with `ast` and
evaluated by a small interpreter here: only comparisons, `and`/`or`/`not`, arithmetic,
numbers, strings, tuples, `in`, the names and a few pure functions (`FUNCTIONS`). Nothing
is ever passed to `eval`, and no attribute, subscript or other call can be written.
"""

from __future__ import annotations

import ast
import math
import operator
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from . import fmt
from .events import Event

NAMES: dict[str, str] = {
    "loss": "the latest loss (unset before the first forward)",
    "step": "optimizer steps taken",
    "epoch": "the current epoch (1 from the first batch on; 0 without data)",
    "batch": "the latest batch's number within its epoch",
    "iteration": "forwards performed",
    "grad_norm": "L2 norm of all the optimizer's grads (unset when every grad is None)",
    "warnings": "codes of the warnings the op just performed raised, e.g. "
    "'grad-accumulated' in warnings",
    "lr": "param group 0's learning rate",
    "op": "the op just performed: 'forward', 'backward', 'step' or 'zero_grad'",
    "where": "in `optdbg trace`: the script's line that made the op, e.g. 'train.py:42' "
    "(unset for scenarios)",
}
"""The names a condition can use, with what they mean."""
CONSTANTS: dict[str, float] = {"nan": math.nan, "inf": math.inf}
FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int]] = {
    "abs": (abs, 1, 1),
    "isnan": (math.isnan, 1, 1),
    "isinf": (math.isinf, 1, 1),
    "isfinite": (math.isfinite, 1, 1),
    "min": (min, 2, 8),
    "max": (max, 2, 8),
}
"""Callable names: (function, fewest arguments, most arguments)."""
MAX_LENGTH = 1000
MAX_DEPTH = 64
"""A condition nested deeper than this (e.g. 990 unary minuses) is refused when parsed."""
BIG = 2**64
"""Integers past this magnitude are computed as floats (2 ** 4096 is inf, never a number
with thousands of digits that cannot even be printed)."""
NONFINITE_STOP = 3
"""`run_until` stops once this many forwards in a row gave a NaN or infinite loss."""

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.In: lambda a, b: operator.contains(b, a),
    ast.NotIn: lambda a, b: not operator.contains(b, a),
}
_ARITH: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_SYMBOLS = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}
_SAMPLE: dict[str, Any] = {
    "loss": 1.0,
    "step": 1,
    "epoch": 1,
    "batch": 1,
    "iteration": 1,
    "grad_norm": 1.0,
    "warnings": ("grad-accumulated",),
    "lr": 0.1,
    "op": "forward",
    "where": "train.py:42",
}


class ConditionError(ValueError):
    """A condition that cannot be parsed or evaluated; the message says why."""


class _Missing:
    """A name without a value yet (loss before the first forward): comparisons are false."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "unset"


MISSING = _Missing()


# ----------------------------------------------------------------- parsing


def parse_expression(text: str) -> tuple[ast.Expression, frozenset[str]]:
    """Parse and check a condition; returns the tree and the names it reads."""
    if not isinstance(text, str) or not text.strip():
        raise ConditionError("the condition is empty: write e.g. loss < 8.01")
    if len(text) > MAX_LENGTH:
        raise ConditionError(f"the condition is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        where = f" at column {e.offset}" if e.offset else ""
        raise ConditionError(f"cannot parse {text.strip()!r}{where}: {e.msg}") from None
    except (RecursionError, MemoryError):
        raise ConditionError("the condition is too deeply nested to read") from None
    except ValueError as e:  # e.g. an integer literal past Python's 4,300 digits
        raise ConditionError(f"cannot read the condition: {e}") from None
    if _depth(tree) > MAX_DEPTH:
        raise ConditionError(f"the condition is nested more than {MAX_DEPTH} levels deep")
    names = set()
    try:
        for node in ast.walk(tree):
            names |= _check(node)
    except RecursionError:
        raise ConditionError("the condition is too deeply nested to read") from None
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in FUNCTIONS and id(node) not in called:
            raise ConditionError(f"{node.id} is a function: call it, e.g. {node.id}(loss)")
    return tree, frozenset(names)


def _depth(tree: ast.AST) -> int:
    """How deeply the tree nests, found without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


_ALLOWED = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.BinOp,
    ast.Compare,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.Tuple,
    ast.List,
    *_COMPARE,
    *_ARITH,
)


def _check(node: ast.AST) -> set[str]:
    allowed = ", ".join(NAMES)
    if not isinstance(node, _ALLOWED):
        what = type(node).__name__
        hint = {
            "Attribute": "attributes (a.b) cannot be used",
            "Subscript": "indexing (a[b]) cannot be used",
            "Lambda": "lambdas cannot be used",
            "NamedExpr": "assignments cannot be used",
            "IfExp": "if/else expressions cannot be used",
        }.get(what, f"{what} is not allowed")
        raise ConditionError(
            f"{hint}: a condition may use comparisons, and/or/not, arithmetic, numbers, "
            f"strings, `in`, the names {allowed} and the functions {', '.join(FUNCTIONS)}"
        )
    if isinstance(node, ast.Constant) and not isinstance(
        node.value, bool | int | float | str | type(None)
    ):
        raise ConditionError(f"{node.value!r} is not allowed: use numbers and strings")
    if isinstance(node, ast.Call):
        func = node.func
        if not isinstance(func, ast.Name) or func.id not in FUNCTIONS:
            shown = func.id if isinstance(func, ast.Name) else ast.unparse(func)
            raise ConditionError(f"{shown}(...) cannot be called: only {', '.join(FUNCTIONS)} can")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise ConditionError(f"{func.id}() takes plain arguments only")
        _, low, high = FUNCTIONS[func.id]
        if not low <= len(node.args) <= high:
            count = str(low) if low == high else f"{low} to {high}"
            raise ConditionError(f"{func.id}() takes {count} argument(s), not {len(node.args)}")
        return set()
    if isinstance(node, ast.Name):
        if node.id in NAMES:
            return {node.id}
        if node.id in CONSTANTS or node.id in FUNCTIONS:
            return set()
        raise ConditionError(f"unknown name {node.id!r}: a condition can use {allowed}")
    return set()


# ----------------------------------------------------------------- evaluating


def evaluate(tree: ast.AST, env: dict[str, Any]) -> Any:
    """The value of a checked condition tree, with `env` giving the names' values; whatever
    Python raises on the way (an overflow, a complex result, ...) is a ConditionError."""
    try:
        return _evaluate(tree, env)
    except ConditionError:
        raise
    except (ArithmeticError, ValueError, TypeError, RecursionError, MemoryError) as e:
        raise ConditionError(f"{type(e).__name__}: {e}") from None


def _small(value: Any) -> Any:
    """A huge integer as a float (inf past a float's range), anything else as it is."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > BIG:
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    return value


def _evaluate(tree: ast.AST, env: dict[str, Any]) -> Any:
    if isinstance(tree, ast.Expression):
        return _evaluate(tree.body, env)
    if isinstance(tree, ast.Constant):
        return _small(tree.value)
    if isinstance(tree, ast.Name):
        if tree.id in env:
            return env[tree.id]
        return CONSTANTS[tree.id]
    if isinstance(tree, ast.Tuple | ast.List):
        return tuple(_evaluate(e, env) for e in tree.elts)
    if isinstance(tree, ast.BoolOp):
        want = isinstance(tree.op, ast.Or)
        for value in tree.values:
            if _truth(_evaluate(value, env)) == want:
                return want
        return not want
    if isinstance(tree, ast.UnaryOp):
        value = _evaluate(tree.operand, env)
        if value is MISSING:
            return MISSING
        if isinstance(tree.op, ast.Not):
            return not _truth(value)
        _number(value, "-" if isinstance(tree.op, ast.USub) else "+")
        return _small(-value if isinstance(tree.op, ast.USub) else +value)
    if isinstance(tree, ast.BinOp):
        return _arith(tree, _evaluate(tree.left, env), _evaluate(tree.right, env))
    if isinstance(tree, ast.Compare):
        left = _evaluate(tree.left, env)
        for op, node in zip(tree.ops, tree.comparators, strict=True):
            right = _evaluate(node, env)
            if left is MISSING or right is MISSING:
                return False
            try:
                if not _COMPARE[type(op)](left, right):
                    return False
            except TypeError as e:
                shown = " and ".join(fmt.text(repr(v), 80) for v in (left, right))
                raise ConditionError(f"cannot compare {shown}: {e}") from None
            left = right
        return True
    if isinstance(tree, ast.Call):
        assert isinstance(tree.func, ast.Name)
        fn = FUNCTIONS[tree.func.id][0]
        args = [_evaluate(a, env) for a in tree.args]
        if any(a is MISSING for a in args):
            return MISSING
        for a in args:
            _number(a, f"{tree.func.id}()")
        return _small(fn(*args))
    raise ConditionError(f"{type(tree).__name__} is not allowed")  # _check prevents it


def _truth(value: Any) -> bool:
    return value is not MISSING and bool(value)


def _number(value: Any, where: str) -> None:
    if not isinstance(value, int | float):
        raise ConditionError(f"{where} needs numbers, not {fmt.text(repr(value), 80)}")


def _arith(node: ast.BinOp, left: Any, right: Any) -> Any:
    if left is MISSING or right is MISSING:
        return MISSING
    symbol = _SYMBOLS[type(node.op)]
    _number(left, symbol)
    _number(right, symbol)
    big = (
        isinstance(left, int) and isinstance(right, int) and (abs(right) > 64 or abs(left) > 2**64)
    )
    if isinstance(node.op, ast.Pow) and big:
        left = float(left)  # keep integer powers small: 10 ** 10 ** 10 stays a float
    try:
        return _small(_ARITH[type(node.op)](left, right))
    except ZeroDivisionError:
        return math.nan
    except OverflowError:
        return math.inf


# ----------------------------------------------------------------- conditions


class Stepper(Protocol):
    """What a run and its conditions use of the driver that performs the ops (the Session)."""

    @property
    def loss_value(self) -> float | None: ...

    @property
    def step_count(self) -> int: ...

    @property
    def forward_count(self) -> int: ...

    @property
    def epoch(self) -> int: ...

    @property
    def batch(self) -> int: ...

    @property
    def optimizer(self) -> torch.optim.Optimizer: ...

    @property
    def completed(self) -> bool:
        """The last op completed the iteration pattern."""
        ...

    def next(self) -> Event:
        """Perform the next op of the iteration pattern."""
        ...

    def due_evaluation(self) -> Event | None:
        """The evaluation due after a completed pattern, performed; else None."""
        ...


@dataclass
class Context:
    """What a condition sees after an op."""

    session: Stepper
    event: Event
    iterations: int
    """Whole iterations completed by this run."""

    def value(self, name: str) -> Any:
        s = self.session
        if name == "loss":
            return MISSING if s.loss_value is None else s.loss_value
        if name == "step":
            return s.step_count
        if name == "epoch":
            return s.epoch
        if name == "batch":
            return s.batch
        if name == "iteration":
            return s.forward_count
        if name == "grad_norm":
            norm = grad_norm(s.optimizer)
            return MISSING if norm is None else norm
        if name == "warnings":
            return self.event.codes()
        if name == "lr":
            lr = s.optimizer.param_groups[0].get("lr")
            if isinstance(lr, torch.Tensor):
                return lr.item()
            return MISSING if lr is None else lr
        if name == "op":
            return self.event.op
        if name == "where":
            return MISSING
        raise ConditionError(f"unknown name {name!r}")


def grad_norm(optimizer: torch.optim.Optimizer) -> float | None:
    """The L2 norm of every grad of the optimizer's parameters together (None if all None)."""
    norms = [
        torch.linalg.vector_norm(p.grad.detach()).double()
        for g in optimizer.param_groups
        for p in g["params"]
        if p.grad is not None
    ]
    if not norms:
        return None
    return float(torch.linalg.vector_norm(torch.stack(norms)).item())


class Condition:
    """Something to stop at. `reset` runs when a run starts; `holds` after each op."""

    description = "condition"

    def reset(self, session: Stepper) -> None:
        return None

    def holds(self, ctx: Context) -> bool:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.description


class Expression(Condition):
    """A user condition such as `loss < 8.01 or 'grad-accumulated' in warnings`."""

    def __init__(self, text: str) -> None:
        self.text = text.strip() if isinstance(text, str) else text
        self.tree, self.names = parse_expression(text)
        self.description = self.text
        try:
            result = evaluate(self.tree, _SAMPLE)
        except ConditionError as e:
            raise ConditionError(f"{self.text!r}: {e}") from None
        if not isinstance(result, bool):
            raise ConditionError(
                f"{self.text!r} is a value, not a test: write a comparison such as "
                "loss < 8.01 or step >= 100"
            )

    def holds(self, ctx: Context) -> bool:
        env = {name: ctx.value(name) for name in self.names}
        return evaluate(self.tree, env) is True


class WarningFires(Condition):
    """A pitfall warning fires (a given code, or any)."""

    def __init__(self, code: str | None = None) -> None:
        self.code = code
        self.description = f"warning {code} fires" if code else "any warning fires"

    def holds(self, ctx: Context) -> bool:
        codes = ctx.event.codes()
        return bool(codes) if self.code is None else self.code in codes


class LossCrosses(Condition):
    """The loss moves to the other side of `threshold` (or reaches it, or becomes NaN)."""

    def __init__(self, threshold: float) -> None:
        self.threshold = float(threshold)
        self.description = f"loss crosses {threshold:g}"
        self._side: int | None = None

    def _side_of(self, loss: float | None) -> int | None:
        if loss is None:
            return None
        if math.isnan(loss):
            return 2
        return (loss > self.threshold) - (loss < self.threshold)

    def reset(self, session: Stepper) -> None:
        self._side = self._side_of(session.loss_value)

    def holds(self, ctx: Context) -> bool:
        side = self._side_of(ctx.session.loss_value)
        if side is None:
            return False
        before, self._side = self._side, side
        return before is not None and (side != before or side == 0)


class Iterations(Condition):
    """`n` whole iterations done in this run."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.description = f"{n} iteration{'s' if n != 1 else ''} done"

    def holds(self, ctx: Context) -> bool:
        return ctx.iterations >= self.n


class Epochs(Condition):
    """`n` epochs passed: stops at the forward that starts the n-th epoch after this one."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.description = f"{n} epoch{'s' if n != 1 else ''} passed"
        self._target = n

    def reset(self, session: Stepper) -> None:
        self._target = max(session.epoch, 1) + self.n

    def holds(self, ctx: Context) -> bool:
        return ctx.session.epoch >= self._target


class AnyOf(Condition):
    """Stops when any of the conditions holds (all are checked, so each keeps its state)."""

    def __init__(self, *conditions: Condition) -> None:
        self.conditions = conditions
        self.description = " or ".join(c.description for c in conditions)

    def reset(self, session: Stepper) -> None:
        for c in self.conditions:
            c.reset(session)

    def holds(self, ctx: Context) -> bool:
        return any([c.holds(ctx) for c in self.conditions])  # a list: every one is checked


def parse_condition(text: str) -> Condition:
    """A user condition from its text; ConditionError with a clear message if invalid."""
    return Expression(text)


# ----------------------------------------------------------------- the loop


@dataclass(frozen=True)
class RunResult:
    reason: str
    """"condition", "max_iterations", "stopped" (the stop flag), "error" or "non-finite"
    (the loss stayed NaN or infinite for NONFINITE_STOP forwards in a row)."""
    message: str
    """Why it stopped, in words: "condition met at op 37 (forward): loss < 8.01"."""
    events: tuple[Event, ...] = field(default=())
    iterations: int = 0
    """Whole iterations completed (ops that closed the iteration pattern)."""
    index: int | None = None
    """The index of the last op performed (None when none was)."""


def run_until(
    session: Stepper,
    condition: Condition | str | None = None,
    max_iterations: int | None = None,
    stop: threading.Event | None = None,
    on_progress: Callable[[Event], None] | None = None,
    progress_interval: float = 0.0,
) -> RunResult:
    """Perform the session's next ops, whole iterations at a time, until something stops it.

    Stops right after the first op at which `condition` holds, before an iteration beyond
    `max_iterations`, after the op during which `stop` was set (set it from any thread to
    pause), after an op that failed, or once the loss has been NaN or infinite at
    NONFINITE_STOP forwards in a row (nothing recovers from there: running on would only
    repeat it). `on_progress(event)` runs on this thread after an op, at most every
    `progress_interval` seconds; it may read `session.snapshot()`.
    """
    if isinstance(condition, str):
        condition = parse_condition(condition)
    if max_iterations is not None and max_iterations < 0:
        raise ValueError(f"max_iterations must be >= 0, not {max_iterations}")
    if condition is not None:
        condition.reset(session)
    events: list[Event] = []
    iterations = 0
    nonfinite = 0
    last_call = -math.inf

    def result(reason: str, message: str) -> RunResult:
        index = events[-1].index if events else None
        return RunResult(reason, message, tuple(events), iterations, index)

    while True:
        if max_iterations is not None and iterations >= max_iterations:
            what = f" without {condition.description}" if condition is not None else ""
            return result(
                "max_iterations",
                f"max iterations reached ({max_iterations}){what}",
            )
        if stop is not None and stop.is_set():
            where = f"after op {events[-1].index}" if events else "before any op"
            return result("stopped", f"paused {where}")
        performed = [session.next()]
        if performed[0].ok and session.completed:
            iterations += 1
            due = session.due_evaluation()  # optdbg_config["evaluate_every"]
            performed += [due] if due is not None else []
        for event in performed:
            events.append(event)
            now = time.perf_counter()
            if on_progress is not None and now - last_call >= progress_interval:
                last_call = now
                on_progress(event)
            if condition is not None:
                try:
                    met = condition.holds(Context(session, event, iterations))
                except ConditionError as e:
                    return result("error", f"the condition failed at op {event.index}: {e}")
                if met:
                    return result(
                        "condition",
                        f"condition met at op {event.index} ({event.op}): {condition.description}",
                    )
        if not event.ok:
            return result("error", f"op {event.index} ({event.op}) failed: {event.summary}")
        if event.op == "forward":
            loss = session.loss_value
            nonfinite = nonfinite + 1 if loss is not None and not math.isfinite(loss) else 0
            if nonfinite >= NONFINITE_STOP:
                return result(
                    "non-finite",
                    f"the loss has been {fmt.num(loss)} at {NONFINITE_STOP} forwards in a row "
                    f"(op {event.index}): the run cannot recover, so it stopped; reload and "
                    "lower the learning rate, or fix what makes the loss non-finite",
                )
