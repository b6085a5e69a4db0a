"""L2 norms of tensors, fused and shared within one op.

An op's summary line and the pitfall detectors both read the norms of the tensors the op
changed (a step's parameters, a backward's grads). Inside `shared_norms()` each tensor's
norm is computed once, the misses of one call fused into one `torch._foreach_norm` with one
transfer. A norm is kept by the tensor's identity and version counter, which do not see
every write (`.data`, fused optimizers): whoever opens the block calls `forget()` after any
code it does not control has run in it (the scenario's, an optimizer step).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

_local = threading.local()


@contextmanager
def shared_norms() -> Iterator[None]:
    """Within the block (per thread), `norms` computes each unchanged tensor's norm once."""
    outer = getattr(_local, "memo", None)
    _local.memo = {}
    try:
        yield
    finally:
        _local.memo = outer


def forget() -> None:
    """Drop the norms kept so far (code that may write tensors behind their counters ran)."""
    if getattr(_local, "memo", None) is not None:
        _local.memo = {}


def norms(tensors: Sequence[torch.Tensor]) -> list[float]:
    """The L2 norm of each (strided, real) tensor as a float: `torch.linalg.vector_norm`'s
    value, the ones not known yet computed together."""
    memo: dict[tuple[int, int], tuple[weakref.ref[torch.Tensor], float]] | None
    memo = getattr(_local, "memo", None)
    found: list[float | None] = [None] * len(tensors)
    missing: list[int] = []
    keys = [_key(t) if memo is not None else None for t in tensors]
    for i, (t, key) in enumerate(zip(tensors, keys, strict=True)):
        hit = memo.get(key) if memo is not None and key is not None else None
        if hit is not None and hit[0]() is t:
            found[i] = hit[1]
        else:
            missing.append(i)
    if missing:
        computed = floats(torch._foreach_norm([tensors[i].detach() for i in missing]))
        for i, value in zip(missing, computed, strict=True):
            found[i] = value
            key = keys[i]
            if memo is not None and key is not None:
                memo[key] = (weakref.ref(tensors[i]), value)
    return [float(v) for v in found if v is not None]


def known(t: torch.Tensor) -> float | None:
    """The norm of `t` computed earlier in this `shared_norms()` block, if any."""
    memo = getattr(_local, "memo", None)
    key = _key(t) if memo else None
    hit = memo.get(key) if memo and key is not None else None
    return hit[1] if hit is not None and hit[0]() is t else None


def prefetch(tensors: Sequence[torch.Tensor | None]) -> None:
    """Within `shared_norms()`, the norms of these tensors (those `norms` takes: strided and
    real) computed together now, for the summary line and the detectors that read them next
    (one fused call for all, not one per reader)."""
    if getattr(_local, "memo", None) is None:
        return
    norms(
        [t for t in tensors if t is not None and t.layout == torch.strided and not t.is_complex()]
    )


def _key(t: torch.Tensor) -> tuple[int, int] | None:
    try:
        return id(t), t._version
    except RuntimeError:  # inference tensors keep no version counter
        return None


def floats(scalars: Sequence[torch.Tensor]) -> list[float]:
    """One-element tensors as floats, in one transfer per device (not one sync each); on the
    CPU, where reading one costs no sync, each is read directly (stacking them costs more)."""
    if not scalars:
        return []
    if all(x.is_cpu for x in scalars) or len({x.device for x in scalars}) > 1:
        return [float(x) for x in scalars]
    return [float(x) for x in torch.stack([x.reshape(()) for x in scalars]).tolist()]
