"""Plain-words explanations for the errors PyTorch raises in a training loop."""

from __future__ import annotations

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
        "expected scalar type",
        "Two tensors of different dtypes met in one operation. Convert them to the same "
        "dtype, e.g. with .float().",
    ),
    (
        "Expected all tensors to be on the same device",
        "Parameters and data live on different devices. Move them with .to(device).",
    ),
)


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
