"""Plain-words explanations for the errors PyTorch raises in a training loop."""

from __future__ import annotations

import re

UNCHANGED = "the state is unchanged"
"""The claim an op error makes when the op left everything as it was (the Session checks it
before it is shown: see Session._truthful)."""

_EXPLANATIONS: tuple[tuple[str, str], ...] = (
    (
        "backward through the graph a second time",
        "The previous backward freed the tensors this graph saved. Run forward (f) again to "
        "build a fresh graph before each backward, or pass retain_graph=True to the first "
        "backward if you really mean to backpropagate twice.",
    ),
    (
        "modified by an inplace operation",
        "step() updated the parameters in place after this loss was computed, so its graph "
        "refers to values that no longer exist. Run forward (f) again after each step.",
    ),
    (
        "grad can be implicitly created only for scalar outputs",
        "backward() without arguments needs a loss with a single element. Reduce the loss "
        "in forward, e.g. with .sum() or .mean().",
    ),
    (
        "does not require grad and does not have a grad_fn",
        "The loss is not connected to any tensor that requires grad: it was computed under "
        "torch.no_grad(), detached, or from parameters created without requires_grad=True.",
    ),
    (
        "a leaf Variable that requires grad is being used in an in-place operation",
        "A parameter was changed in place (e.g. `w -= lr * w.grad`) while autograd was "
        "recording: PyTorch refuses an in-place change of a leaf that requires grad. Do the "
        "update inside `with torch.no_grad():`.",
    ),
    (
        "expected scalar type",
        "Two tensors of different dtypes met in one operation. Convert them to the same "
        "dtype, e.g. with .float().",
    ),
    (
        "Expected all tensors to be on the same device",
        "Parameters and data live on different devices. Move them with .to(device).",
    ),
)


_LOCAL = re.compile(r"local variable '(\w+)'")


def explain_step(kind: str, message: str) -> str:
    """Why the scenario's own step() failed, and the fix."""
    name = _LOCAL.search(message)
    if kind == "UnboundLocalError" and name:
        n = name.group(1)
        return (
            f"step() assigns to `{n}` (`{n} -= ...`), which makes `{n}` a local name of the "
            f"function, so reading it first fails. Declare it at the top of step(): "
            f"`global {n}`. The state is unchanged."
        )
    if "NoneType" in message:
        return (
            "A parameter's .grad is None in step(): run backward (b) before step, and check "
            "that the loss uses every parameter step() updates. The state is unchanged."
        )
    hint = explain(message)
    if hint.startswith("PyTorch refused"):
        return "Fix step() there, then reload (r). The state is unchanged."
    return hint + " The state is unchanged."


_INPLACE_IN_FORWARD = (
    "A tensor that this loss's graph saved was changed in place after forward used it (no "
    "step ran since that forward): the scenario's own code modified it, e.g. a reused "
    "tensor refilled with fill_() or an in-place op such as mul_(). Use a fresh tensor or "
    "the out-of-place op (x = x * 0.5); the message names the tensor and its versions."
)


def explain(message: str, stepped: bool = True) -> str:
    """Plain words for PyTorch's `message`; `stepped`: a step ran since the loss's forward."""
    if not stepped and "modified by an inplace operation" in message:
        return _INPLACE_IN_FORWARD
    return next(
        (text for key, text in _EXPLANATIONS if key in message),
        f"PyTorch refused this operation; {UNCHANGED}.",
    )
