"""Loading scenario files: execute per the contract, validate, name the parameters."""

from __future__ import annotations

import ast
import inspect
import io
import random
import stat
import sys
import tokenize
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import torch

from . import fmt
from .builtins import builtin_names, docstring_parts, resolve
from .errors import ScenarioError, message_of, source_line, type_of
from .events import LOOP_OPS, OPS, WORDS
from .guard import UserInterrupt, reset_torch, scenario_code
from .manual import ManualUpdate, StepSource, read_step
from .overrides import apply as apply_overrides

SCENARIO_MODULE_NAME = "__optdbg_scenario__"

_PARAMS_EXPECTED = (
    "the optimizer built from a list of leaf tensors that require grad (or of param-group "
    "dicts such as {'params': [w], 'lr': 0.01}), each tensor in exactly one group"
)

_LOAD_HINTS: tuple[tuple[str, str, str], ...] = (
    (
        "params argument given to the optimizer should be an iterable",
        _PARAMS_EXPECTED,
        "pass a list of tensors, e.g. torch.optim.SGD([t], lr=0.1), not the tensor itself",
    ),
    (
        "optimizer got an empty parameter list",
        _PARAMS_EXPECTED,
        "give the optimizer at least one tensor with requires_grad=True "
        "(for a model: model.parameters(), after the layers are created; a generator such "
        "as model.parameters() is empty once consumed: call it again or keep a list(...))",
    ),
    (
        "can't optimize a non-leaf Tensor",
        _PARAMS_EXPECTED,
        "optimize a leaf tensor: create it with requires_grad=True directly, "
        "e.g. w = (torch.randn(3) * 0.1).requires_grad_()",
    ),
    (
        "some parameters appear in more than one parameter group",
        _PARAMS_EXPECTED,
        "list each tensor in exactly one param group (give a tensor its own lr in one "
        "group only: [{'params': [a]}, {'params': [b], 'lr': 0.01}])",
    ),
    (
        "optimizer can only optimize Tensors",
        _PARAMS_EXPECTED,
        "pass tensors, e.g. torch.optim.SGD([t], lr=0.1); param groups go in a list of "
        "dicts, each with a list under 'params': [{'params': [t]}]",
    ),
    (
        "missing 1 required positional argument: 'params'",
        _PARAMS_EXPECTED,
        "pass the parameters first: torch.optim.SGD([t], lr=0.1)",
    ),
    (
        "cannot be used in a scenario",
        "a scenario that defines its objects and returns normally, without asking anyone",
        "remove the call: optdbg drives the loop; put values in the file (or read a file)",
    ),
    *(
        (
            f"Invalid {what}",
            "hyperparameters in their valid range: lr >= 0, momentum >= 0, "
            "0 <= betas < 1, eps >= 0, weight_decay >= 0",
            "correct the value PyTorch names in the message",
        )
        for what in ("learning rate", "momentum", "weight_decay", "beta", "epsilon", "alpha")
    ),
)
"""PyTorch's errors at optimizer construction: (part of its message, expected, fix)."""


@dataclass
class Scenario:
    """A loaded scenario: the live objects optdbg drives, with their names."""

    path: Path
    name: str
    title: str
    description: str
    namespace: dict[str, Any]
    optimizer: torch.optim.Optimizer
    forward: Callable[[Any], Any]
    forward_line: int
    data: Iterable[Any] | None
    scheduler: Any | None
    scheduler_every: str
    params: list[tuple[str, torch.Tensor]]
    config: dict[str, Any] = field(default_factory=dict)
    config_line: int | None = None
    """The line that binds `optdbg_config` (for errors about a setting), if any."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """The `--set` values it was loaded with (reload applies them again)."""
    manual: StepSource | None = None
    """The manual update form's step() source (None with an optimizer, or without source)."""
    evaluation: Callable[[], Any] | None = None
    """What the evaluate op runs (test_data through model and loss_fn, or evaluate())."""
    evaluation_data: Any | None = None
    """`test_data`, when the evaluation goes through it (its generators are restored)."""
    pattern: tuple[str, ...] = OPS
    """The ops that `i`, `n` and `c` follow (optdbg_config["iteration"])."""
    evaluate_every: str | int | None = None
    """optdbg_config["evaluate_every"]: "epoch", a number of iterations, or None."""
    backward_gradient: Any | None = None
    """The `gradient` argument of backward (a tensor or a function of the loss), or None."""
    notes: list[str] = field(default_factory=list)
    """What optdbg did about the scenario's code that its user should know (e.g. a signal
    handler accepted but not installed), in order; loading and ops add to it."""

    @property
    def is_manual(self) -> bool:
        return isinstance(self.optimizer, ManualUpdate)

    def location(self, line: int | None) -> str:
        return f"{self.path}:{line}" if line else str(self.path)


def load(spec: str | Path, overrides: Mapping[str, Any] | None = None) -> Scenario:
    """Execute a scenario file in a fresh namespace and validate it against the contract.

    `overrides` (from `--set`) replace the literals of top-level assignments first; an
    override that does not apply raises `OverrideError` before anything runs."""
    path = resolve(spec)
    file = str(path)
    source = _read_source(path)
    tree = apply_overrides(_parse(source, file), overrides or {}, file)
    notes: list[str] = []
    namespace = _execute(tree, file, notes)
    try:
        scenario = _build(path, source, tree, namespace)
    except ScenarioError:
        raise
    except Exception as e:  # the scenario's objects raised while optdbg read them
        raise load_exception(e, file, reading=True) from None
    scenario.overrides = dict(overrides or {})
    scenario.notes = notes
    return scenario


def _read_source(path: Path) -> str:
    file = str(path)
    expected = "a scenario file (a .py path) or a built-in name: " + ", ".join(builtin_names())
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ScenarioError(
            file,
            None,
            "no such file",
            expected,
            "check the path, or run `optdbg --list` to see the built-in scenarios",
        ) from None
    except (OSError, ValueError) as e:
        raise _unreadable(file, e) from None
    if stat.S_ISDIR(mode):
        raise ScenarioError(
            file, None, "this is a directory", "a scenario .py file", "name a file inside it"
        )
    if not stat.S_ISREG(mode):  # a FIFO or a device would block or never end
        raise ScenarioError(
            file,
            None,
            "this is not a regular file (a pipe, a device or a socket)",
            "a scenario .py file saved on disk",
            "save the scenario to a file and give its path",
        )
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise _unreadable(file, e) from None
    try:
        source = raw.decode("utf-8-sig")  # Python accepts a leading byte-order mark
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ScenarioError(
            file,
            line,
            f"the file is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})",
            "a Python source file encoded as UTF-8",
            "save the file as UTF-8 (or check that this is the scenario and not a binary file)",
        ) from None
    if not source.strip():
        raise ScenarioError(
            file,
            1,
            "the file is empty",
            "a scenario defining `optimizer` and `forward()` (or `model`, `loss_fn`, `data`)",
            "start from the minimal example in the README, or `optdbg --list` for built-ins",
        )
    if "\0" in source:
        before = source[: source.index("\0")]
        line = before.count("\n") + 1
        raise ScenarioError(
            file,
            line,
            f"the file holds a NUL byte (column {len(before) - before.rfind(chr(10))})",
            "Python source text, which cannot contain NUL bytes",
            "remove the NUL byte at this line (it often comes from a bad copy or a binary file)",
            source_line=source.splitlines()[line - 1],
        )
    return source


def _unreadable(file: str, e: OSError | ValueError) -> ScenarioError:
    reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
    return ScenarioError(
        file,
        None,
        f"cannot read the file: {reason}",
        "a readable scenario .py file",
        "check the path (each part of it at most 255 characters) and its permissions",
    )


def _parse(source: str, file: str) -> ast.Module:
    try:
        return ast.parse(source, filename=file)
    except (RecursionError, MemoryError):
        line = _deepest_line(source)
        raise ScenarioError(
            file,
            line,
            "this expression is nested too deeply for Python to compile",
            "expressions nested at most a few hundred levels deep",
            "split the expression into several statements (or build it in a loop)",
            source_line=source.splitlines()[line - 1] if line else None,
        ) from None
    except SyntaxError as e:
        raise ScenarioError(
            file,
            e.lineno,
            f"syntax error: {e.msg}",
            "valid Python source",
            "correct the syntax at this line (the caret position is column "
            f"{e.offset or 0}); `python -m py_compile {file}` shows the same error",
            source_line=e.text,
        ) from None


def _deepest_line(source: str) -> int | None:
    """The line with the most operators and brackets: where an expression too deep for the
    parser is (tokenizing is iterative, so it works where parsing ran out of stack)."""
    counts: dict[int, int] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.OP:
                counts[tok.start[0]] = counts.get(tok.start[0], 0) + 1
    except (tokenize.TokenError, SyntaxError):
        pass
    return max(counts, key=lambda line: counts[line]) if counts else None


def _refuse_input(*_args: object) -> str:
    raise RuntimeError("input() cannot be used in a scenario: optdbg runs it without a prompt")


def _execute(tree: ast.Module, file: str, notes: list[str]) -> dict[str, Any]:
    namespace: dict[str, Any] = {
        "__name__": SCENARIO_MODULE_NAME,
        "__file__": file,
        "__builtins__": __builtins__,
        "input": _refuse_input,
    }
    reset_torch()
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    try:
        code = compile(tree, file, "exec")
    except (RecursionError, MemoryError):
        raise ScenarioError(
            file,
            None,
            "the file is nested too deeply for Python to compile",
            "expressions and blocks nested at most a few hundred levels deep",
            "split the deepest expression into several statements",
        ) from None
    try:
        with scenario_code(notes), scenario_argv(file):
            exec(code, namespace)
    except UserInterrupt:
        raise
    except SystemExit as e:
        line = _scenario_line(e.__traceback__, file)
        raise ScenarioError(
            file,
            line,
            f"the scenario called sys.exit({e.code!r}) while loading",
            "a scenario that defines its objects and returns normally",
            "remove the exit call: optdbg drives the loop, the scenario only defines it",
            source_line=source_line(file, line),
        ) from None
    except BaseException as e:
        raise load_exception(e, file) from None
    return namespace


@contextmanager
def scenario_argv(file: str) -> Iterator[None]:
    """`sys.argv == [the scenario's path]` while the scenario's code runs (as `python FILE`)."""
    saved = sys.argv
    sys.argv = [file]
    try:
        yield
    finally:
        sys.argv = saved


def _scenario_line(tb: TracebackType | None, file: str) -> int | None:
    """The line of the deepest traceback frame that lies in the scenario file."""
    line = None
    for frame, lineno in traceback.walk_tb(tb):
        if frame.f_code.co_filename == file:
            line = lineno
    return line


def load_exception(e: BaseException, file: str, reading: bool = False) -> ScenarioError:
    """The ScenarioError for an exception raised by the scenario's code while it loads, or
    (`reading`) while optdbg reads the objects it defined (its line: the last frame of the
    traceback in `file`)."""
    line = _scenario_line(e.__traceback__, file)
    text = message_of(e)
    message = text.splitlines()[0] if text else ""
    default = (
        "the scenario's objects can be read (a module's named_parameters() and named_modules())"
        if reading
        else "the scenario file runs to the end without raising"
    )
    expected, fix = next(
        ((exp, hint) for key, exp, hint in _LOAD_HINTS if key in text), (default, None)
    )
    if reading and fix is None:
        fix = "fix the code at this line: optdbg calls it when it reads the scenario"
    if fix is None and isinstance(e, ModuleNotFoundError):
        fix = f"install the missing package ({e.name}) in the environment optdbg runs in"
    return ScenarioError(
        file,
        line,
        f"{type_of(e)} while loading the scenario: {message}",
        expected,
        fix or f"fix the code at this line; `python {file}` shows the full traceback",
        source_line=source_line(file, line),
    )


def _assignment_lines(tree: ast.Module) -> dict[str, int]:
    """Module-level name -> line of its last binding (assignment, def, class, import)."""
    lines: dict[str, int] = {}
    for node in tree.body:
        for name in _bound_names(node):
            lines[name] = node.lineno
    return lines


def _bound_names(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Import | ast.ImportFrom):
        return [(a.asname or a.name).split(".")[0] for a in node.names]
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, ast.AnnAssign | ast.AugAssign):
        targets = [node.target]
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


def _build(path: Path, source: str, tree: ast.Module, ns: dict[str, Any]) -> Scenario:
    file = str(path)
    lines = _assignment_lines(tree)

    def error(name: str | None, problem: str, expected: str, fix: str) -> ScenarioError:
        """A contract error at the line that binds `name` (none for what is missing)."""
        line = lines.get(name) if name else None
        return ScenarioError(file, line, problem, expected, fix, source_line(file, line))

    _check_modules(ns, file, error)
    optimizer = _check_optimizer(ns, error) if "optimizer" in ns else _manual(ns, error)
    params = name_params(optimizer, ns)
    _check_params_have_data(params, error)
    data = ns.get("data")
    if data is not None and not isinstance(data, Iterable) and not hasattr(data, "__getitem__"):
        raise error(
            "data",
            f"`data` is a {type(data).__name__}, which cannot be iterated",
            "`data`: an iterable of batches, such as a list of (X, y) or a DataLoader",
            "wrap the batches in a list, e.g. data = [(X, y)], or use a DataLoader",
        )
    forward, forward_line = _check_forward(ns, data, lines, error)
    scheduler, every = _check_scheduler(ns, data, error)
    title, description = docstring_parts(ast.get_docstring(tree))
    title, description = fmt.text(title, newlines=False), fmt.text(description, limit=None)
    config = ns.get("optdbg_config") or {}
    if not isinstance(config, dict):
        raise error(
            "optdbg_config",
            "`optdbg_config` is not a dict",
            "a dict of settings",
            "e.g. optdbg_config = {}",
        )
    pattern = _pattern(config, error)
    eval_every = _evaluate_every(config, data, error)
    evaluation, evaluation_data = _evaluation(ns, error)
    if evaluation is None and (eval_every is not None or "evaluate" in pattern):
        raise error(
            "optdbg_config",
            "optdbg_config asks for evaluations, but the scenario defines none",
            "`test_data` (with `model` and `loss_fn`) or def evaluate():",
            "define test_data or evaluate(), or remove evaluate_every / v from the pattern",
        )
    gradient = ns.get("backward_gradient")
    if gradient is not None and not (isinstance(gradient, torch.Tensor) or callable(gradient)):
        raise error(
            "backward_gradient",
            f"`backward_gradient` is a {type(gradient).__name__}",
            "a tensor shaped like the loss, or a function of the loss returning one "
            "(the `gradient` of loss.backward(gradient))",
            "e.g. backward_gradient = torch.ones(n), or lambda loss: torch.ones_like(loss)",
        )
    return Scenario(
        path=path,
        name=path.stem,
        title=title or path.stem,
        description=description,
        namespace=ns,
        optimizer=optimizer,
        forward=forward,
        forward_line=forward_line,
        data=data,
        scheduler=scheduler,
        scheduler_every=every,
        params=params,
        config=config,
        config_line=lines.get("optdbg_config"),
        manual=read_step(optimizer.scenario_step) if isinstance(optimizer, ManualUpdate) else None,
        evaluation=evaluation,
        evaluation_data=evaluation_data,
        pattern=pattern,
        evaluate_every=eval_every,
        backward_gradient=gradient,
    )


ErrorFactory = Callable[[str | None, str, str, str], ScenarioError]


def _check_modules(ns: dict[str, Any], file: str, error: ErrorFactory) -> None:
    """Every nn.Module among the globals was initialized: one whose __init__ forgot
    super().__init__() has no parameter registry, and nothing can list its parameters."""
    for key, value in ns.items():
        if key.startswith("__") or not isinstance(value, torch.nn.Module):
            continue
        if "_parameters" in vars(value):
            continue
        cls = type(value)
        init = getattr(cls.__init__, "__code__", None)
        line = init.co_firstlineno if init is not None and init.co_filename == file else None
        raise ScenarioError(
            file,
            line,
            f"`{fmt.name(key)}` is a {fmt.name(cls.__name__)} (an nn.Module) that was never "
            f"initialized: {fmt.name(cls.__name__)}.__init__ does not call super().__init__()",
            "nn.Module subclasses whose __init__ first calls super().__init__()",
            f"add `super().__init__()` as the first line of {fmt.name(cls.__name__)}.__init__",
            source_line(file, line),
        )


def _check_optimizer(ns: dict[str, Any], error: ErrorFactory) -> torch.optim.Optimizer:
    optimizer = ns["optimizer"]
    if not isinstance(optimizer, torch.optim.Optimizer):
        hint = (
            "instantiate it: torch.optim.SGD([t], lr=0.1)"
            if isinstance(optimizer, type) or callable(optimizer)
            else "assign a torch.optim.Optimizer, e.g. torch.optim.SGD([t], lr=0.1)"
        )
        raise error(
            "optimizer",
            f"`optimizer` is a {type(optimizer).__name__}, not a torch.optim.Optimizer",
            "a torch.optim.Optimizer instance",
            hint,
        )
    if _step_needs_args(optimizer):
        raise error(
            "optimizer",
            f"{type(optimizer).__name__}.step() needs a closure (an argument), but optdbg "
            "performs step as plain optimizer.step()",
            "an optimizer whose step() takes no argument (SGD, Adam, AdamW, RMSprop, ...)",
            "use e.g. torch.optim.SGD or Adam; LBFGS re-evaluates the loss inside step, "
            "which cannot be taken one op at a time",
        )
    return optimizer


_NO_UPDATE = (
    "no `optimizer` and no `step()` are defined",
    "an update form: a global `optimizer` (a torch.optim.Optimizer over the parameters "
    "to debug), or def step(): updating the parameters by hand",
    "add e.g. `optimizer = torch.optim.SGD([t], lr=0.1)`, or `def step():` with "
    "`with torch.no_grad(): t -= lr * t.grad`",
)


def _manual(ns: dict[str, Any], error: ErrorFactory) -> ManualUpdate:
    """The manual update form: step(), optional zero_grad(), parameters from `params` or
    every leaf tensor requiring grad among the globals and `model`'s parameters."""
    step = ns.get("step")
    if step is None:
        other = next(
            (
                k
                for k, v in ns.items()
                if not k.startswith("__") and isinstance(v, torch.optim.Optimizer)
            ),
            None,
        )
        if other is not None:
            kind = type(ns[other]).__name__
            raise error(
                other,
                f"no `optimizer` is defined (`{fmt.name(other)}` is a {kind}: optdbg looks "
                "for the name `optimizer`)",
                "a global `optimizer`: a torch.optim.Optimizer over the parameters to debug",
                f"rename it, or add `optimizer = {fmt.name(other)}`",
            )
        raise error(None, *_NO_UPDATE)
    for name in ("step", "zero_grad"):
        fn = ns.get(name)
        if fn is not None and (not callable(fn) or _required_args(fn)):
            raise error(
                name,
                f"`{name}` is {'a function with arguments' if callable(fn) else 'not a function'}",
                f"def {name}(): with no arguments (optdbg calls it as {name}())",
                f"define `def {name}():` that updates the globals (declare them `global`)",
            )
    if "params" in ns:
        try:
            params = list(ns["params"])
        except TypeError:
            params = [ns["params"]]
        where = "params"
    else:
        params = [t for _, t in grad_tensors(ns)]
        where = "step"
    for p in params:
        if not isinstance(p, torch.Tensor) or not p.is_leaf or not p.requires_grad:
            what = type(p).__name__ if not isinstance(p, torch.Tensor) else "a non-leaf tensor"
            if isinstance(p, torch.Tensor) and p.is_leaf:
                what = "a tensor without requires_grad"
            raise error(
                where,
                f"`params` holds {what}",
                "`params`: a list of leaf tensors with requires_grad=True",
                "e.g. params = [w, b], each created with requires_grad=True",
            )
    if not params:
        raise error(
            where,
            "step() is defined but there is no parameter to update",
            "a leaf tensor with requires_grad=True among the globals, a `model`, or `params`",
            "create the parameters with requires_grad=True, e.g. "
            "w = torch.zeros(3, requires_grad=True)",
        )
    try:
        return ManualUpdate(params, step, ns.get("zero_grad"))
    except (ValueError, TypeError) as e:
        raise error(
            where,
            f"the parameters cannot be updated: {e}",
            _PARAMS_EXPECTED,
            "list each tensor once",
        ) from None


def _pattern(config: dict[str, Any], error: ErrorFactory) -> tuple[str, ...]:
    text = config.get("iteration", " ".join(OPS))
    words = text.split() if isinstance(text, str) else None
    ops = [WORDS.get(w) for w in words or ()]
    if not words or any(op not in LOOP_OPS for op in ops):
        raise error(
            "optdbg_config",
            f'optdbg_config["iteration"] is {text!r}',
            "the op words one iteration performs, from f b s z v (or forward backward step "
            'zero_grad evaluate), e.g. "f b f b f b f b s z"',
            'correct the words, or remove the key for the default "f b s z"',
        )
    return tuple(op for op in ops if op is not None)


def _evaluate_every(config: dict[str, Any], data: Any, error: ErrorFactory) -> str | int | None:
    every = config.get("evaluate_every")
    if every is None:
        return None
    if every == "epoch":
        if data is None:
            raise error(
                "optdbg_config",
                'evaluate_every is "epoch" but there is no `data`, so there are no epochs',
                '`data` with epochs, or a number of iterations: {"evaluate_every": 10}',
                "define `data`, or evaluate every N iterations",
            )
        return "epoch"
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise error(
            "optdbg_config",
            f'optdbg_config["evaluate_every"] is {every!r}',
            '"epoch" or a whole number of iterations >= 1',
            'e.g. optdbg_config = {"evaluate_every": 10}',
        )
    return every


def _evaluation(ns: dict[str, Any], error: ErrorFactory) -> tuple[Callable[[], Any] | None, Any]:
    """What the evaluate op runs: the scenario's evaluate(), or test_data through
    model and loss_fn (as the lecture's test loop)."""
    fn = ns.get("evaluate")
    if fn is not None:
        if not callable(fn) or _required_args(fn):
            raise error(
                "evaluate",
                "`evaluate` is not a function without arguments",
                "def evaluate(): returning a number or a dict of named numbers",
                "e.g. def evaluate(): return {'loss': loss_fn(model(X_val), y_val).item()}",
            )
        return fn, None
    test_data = ns.get("test_data")
    if test_data is None:
        return None, None
    model, loss_fn = ns.get("model"), ns.get("loss_fn")
    if not (callable(model) and callable(loss_fn)):
        raise error(
            "test_data",
            "`test_data` is defined but `model` and `loss_fn` are not both there",
            "test_data batches (X, y) measured as loss_fn(model(X), y), or def evaluate():",
            "define `model` and `loss_fn`, or write def evaluate(): returning the numbers",
        )
    if not isinstance(test_data, Iterable) or isinstance(test_data, Iterator):
        raise error(
            "test_data",
            f"`test_data` is a {type(test_data).__name__}, not a re-iterable collection",
            "`test_data`: a list of (X, y) batches or a DataLoader (read at every evaluate)",
            "e.g. test_data = [(X_test, y_test)] or a DataLoader",
        )
    return (lambda: test_loop(model, loss_fn, test_data)), test_data


def test_loop(
    model: Callable[[Any], Any], loss_fn: Callable[..., Any], data: Any
) -> dict[str, float]:
    """The lecture's test loop: the mean of the batches' losses and, for class-index targets,
    the fraction of rows whose argmax is the target (the caller sets no_grad and eval mode)."""
    total, batches, correct, rows = 0.0, 0, 0.0, 0
    classes = True
    for batch in data:
        x, y = _split_batch(batch)
        pred = model(x)
        total += loss_fn(pred, y).item()
        batches += 1
        classes = classes and _class_targets(pred, y)
        if classes:
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()
            rows += len(y)
    if not batches:
        raise ValueError("`test_data` yielded no batches: give it at least one (X, y)")
    result = {"loss": total / batches}
    if classes and rows:
        result["accuracy"] = correct / rows
    return result


def _class_targets(pred: Any, y: Any) -> bool:
    return (
        isinstance(pred, torch.Tensor)
        and isinstance(y, torch.Tensor)
        and pred.dim() == 2
        and y.dim() == 1
        and not y.is_floating_point()
        and not y.is_complex()
        and pred.shape[0] == y.shape[0]
    )


def _check_params_have_data(params: list[tuple[str, torch.Tensor]], error: ErrorFactory) -> None:
    """A parameter on the `meta` device has a shape but no values: nothing can be shown or
    computed with it (copying it out fails), so it is refused here, not at the first view."""
    for name, p in params:
        if p.is_meta:
            raise error(
                name.split(".")[0].split("[")[0],  # the global it belongs to, for the line
                f"parameter `{name}` is on the meta device: it has a shape "
                f"{tuple(p.shape)} but no values",
                "parameters that hold data, on the CPU or an available accelerator",
                f"create it on a real device, e.g. {name} = torch.zeros(..., "
                'device="cpu", requires_grad=True), or call .to_empty(device="cpu") and '
                "initialize it",
            )


def _step_needs_args(obj: Any) -> bool:
    """Whether `obj.step()` cannot be called without arguments, judged from its class's
    method: an LR scheduler replaces `optimizer.step` on the instance with a wrapper whose
    signature shows the unbound `(self, closure=None)`."""
    method = getattr(type(obj), "step", None)
    if method is None:
        return False
    needed = _required_args(method)
    return needed is not None and needed > 1  # `self` aside


def _required_args(fn: Callable[..., Any]) -> int | None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in sig.parameters.values() if p.kind in kinds and p.default is p.empty)


def _check_forward(
    ns: dict[str, Any], data: Any, lines: dict[str, int], error: ErrorFactory
) -> tuple[Callable[[Any], Any], int]:
    fwd = ns.get("forward")
    if fwd is not None:
        if not callable(fwd):
            raise error(
                "forward",
                f"`forward` is a {type(fwd).__name__}, not a function",
                "def forward(): ... returning the scalar loss tensor",
                "define forward as a function that computes and returns the loss",
            )
        nargs = _required_args(fwd)
        line = getattr(getattr(fwd, "__code__", None), "co_firstlineno", lines.get("forward", 1))
        if data is None and nargs:
            raise error(
                "forward",
                f"`forward` takes {nargs} argument(s) but there is no `data` to feed it",
                "forward() with no arguments, or forward(batch) together with `data`",
                "remove the argument, or define `data` (an iterable of batches)",
            )
        if data is not None and nargs == 0 and not _accepts_one(fwd):
            raise error(
                "forward",
                "`data` is defined but `forward` takes no batch argument",
                "forward(batch) when `data` exists: optdbg passes the next batch",
                "define `def forward(batch):` and use the batch",
            )
        if data is None:
            return (lambda _batch: fwd()), line
        return fwd, line
    return _supervised_forward(ns, data, lines, error)


def _accepts_one(fn: Callable[..., Any]) -> bool:
    try:
        inspect.signature(fn).bind(None)
    except (TypeError, ValueError):
        return False
    return True


def _supervised_forward(
    ns: dict[str, Any], data: Any, lines: dict[str, int], error: ErrorFactory
) -> tuple[Callable[[Any], Any], int]:
    present = [n for n in ("model", "loss_fn", "data") if ns.get(n) is not None]
    if not present:
        raise error(
            None,
            "no `forward` is defined",
            "either def forward() returning the scalar loss, "
            "or `model`, `loss_fn` and `data` (loss = loss_fn(model(X), y) per batch)",
            "add e.g. `def forward(): return ((w - 3) ** 2).sum()`",
        )
    missing = [n for n in ("model", "loss_fn", "data") if n not in present]
    if missing:
        raise error(
            present[-1],
            f"`{'`, `'.join(present)}` defined but `{'`, `'.join(missing)}` missing",
            "the supervised form needs all of `model`, `loss_fn` and `data`",
            f"define {', '.join(missing)}, or define def forward() instead",
        )
    model, loss_fn = ns["model"], ns["loss_fn"]
    for name, obj in (("model", model), ("loss_fn", loss_fn)):
        if not callable(obj):
            raise error(
                name,
                f"`{name}` is a {type(obj).__name__}, which cannot be called",
                f"`{name}`: a callable (an nn.Module or a function)",
                "e.g. model = nn.Linear(2, 1); loss_fn = nn.MSELoss()",
            )

    def forward(batch: Any) -> Any:
        x, y = _split_batch(batch)
        return loss_fn(model(x), y)

    return forward, lines.get("loss_fn", 1)


def _split_batch(batch: Any) -> tuple[Any, Any]:
    if isinstance(batch, Mapping):
        keys = ", ".join(repr(k) for k in list(batch)[:6])
        raise TypeError(
            "each batch of `data` must be a pair (X, y) for loss_fn(model(X), y); got a "
            f"{type(batch).__name__} with keys {keys}: define forward(batch) to pick them, "
            "e.g. def forward(batch): return loss_fn(model(batch['x']), batch['y'])"
        )
    if isinstance(batch, str | bytes):
        raise TypeError(
            "each batch of `data` must be a pair (X, y) for loss_fn(model(X), y); "
            f"got a {type(batch).__name__}"
        )
    try:
        x, y = batch
    except (TypeError, ValueError):
        raise TypeError(
            f"each batch of `data` must be a pair (X, y) for loss_fn(model(X), y); "
            f"got a {type(batch).__name__}"
        ) from None
    return x, y


def _check_scheduler(ns: dict[str, Any], data: Any, error: ErrorFactory) -> tuple[Any, str]:
    scheduler = ns.get("scheduler")
    every = ns.get("scheduler_every", "step")
    if scheduler is not None and not callable(getattr(scheduler, "step", None)):
        raise error(
            "scheduler",
            f"`scheduler` is a {type(scheduler).__name__} without a step() method",
            "an LR scheduler from torch.optim.lr_scheduler",
            "e.g. scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)",
        )
    if scheduler is not None and _step_needs_args(scheduler):
        raise error(
            "scheduler",
            f"`scheduler` is a {type(scheduler).__name__}, whose step() needs an argument, "
            "but optdbg steps it as plain scheduler.step() after each optimizer step",
            "a scheduler stepped without arguments (StepLR, ExponentialLR, "
            "CosineAnnealingLR, OneCycleLR, LambdaLR, ...)",
            "use a schedule that depends on the step count only (ReduceLROnPlateau needs "
            "a validation metric, which a scenario does not have), or remove `scheduler`",
        )
    if every not in ("step", "epoch"):
        raise error(
            "scheduler_every",
            f"scheduler_every is {every!r}",
            '"step" (the default) or "epoch"',
            'set scheduler_every = "epoch" or remove it',
        )
    if every == "epoch" and data is None:
        raise error(
            "scheduler_every",
            'scheduler_every = "epoch" but there is no `data`, so there are no epochs',
            "`data` (an iterable of batches) when stepping the scheduler per epoch",
            "define `data`, or remove scheduler_every to step after each optimizer step",
        )
    return scheduler, every


def batch_count(data: Any) -> int | None:
    """len(data) when `data` tells it (a total is optional: None when len() is missing, raises,
    or is not a plain count)."""
    if data is None:
        return None
    try:
        n = len(data)
    except UserInterrupt:
        raise
    except BaseException:  # no __len__, one that raises, or one past sys.maxsize
        return None
    return n if n >= 0 else None


def name_params(
    optimizer: torch.optim.Optimizer, ns: dict[str, Any]
) -> list[tuple[str, torch.Tensor]]:
    """Names for the optimizer's parameters, from the scenario's globals."""
    names: dict[int, str] = {}
    for key, value in ns.items():
        if key.startswith("__"):
            continue
        for name, tensor in _tensors_under(key, value):
            names.setdefault(id(tensor), name)
    named = []
    for g, group in enumerate(optimizer.param_groups):
        for i, p in enumerate(group["params"]):
            named.append((names.get(id(p), f"group{g}.param{i}"), p))
    return named


def _tensors_under(key: str, value: Any) -> list[tuple[str, torch.Tensor]]:
    """The tensors a global holds, with their names (escaped: a name is shown everywhere)."""
    key = fmt.name(key)
    if isinstance(value, torch.Tensor):
        return [(key, value)]
    if isinstance(value, torch.nn.Module):
        return [(f"{key}.{fmt.name(n)}", p) for n, p in value.named_parameters()]
    if isinstance(value, list | tuple) and len(value) <= 1000:
        return [(f"{key}[{i}]", v) for i, v in enumerate(value) if isinstance(v, torch.Tensor)]
    return []


def grad_tensors(ns: dict[str, Any]) -> list[tuple[str, torch.Tensor]]:
    """Every leaf tensor of the scenario's globals that requires grad, by name."""
    seen: set[int] = set()
    found = []
    for key, value in ns.items():
        if key.startswith("__"):
            continue
        for name, t in _tensors_under(key, value):
            if t.requires_grad and t.is_leaf and id(t) not in seen:
                seen.add(id(t))
                found.append((name, t))
    return found
