"""Measuring tensors for the detectors: one reduction per tensor, non-finite elements named."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch

from ..norms import known, norms


def measure(t: torch.Tensor) -> tuple[float, str | None]:
    """(L2 norm, None) for a finite tensor; (norm, which elements are not finite) otherwise.

    One reduction in the tensor's own dtype (fast): its result is finite only when every
    element is. Only when it is not are the elements counted, and the norm of a finite
    tensor whose squares overflowed is taken again in float64.
    """
    t = t.detach()
    if t.is_complex():
        t = t.abs()
    norm = float(torch.linalg.vector_norm(t))
    if math.isfinite(norm):
        return norm, None
    count = int((~torch.isfinite(t)).sum())
    if count == 0:  # finite values whose squares overflowed
        return float(torch.linalg.vector_norm(t, dtype=torch.float64)), None
    nan = int(torch.isnan(t).sum())
    kinds = [k for k, n in (("NaN", nan), ("Inf", count - nan)) if n]
    return norm, f"{count} of {t.numel()} elements {' and '.join(kinds)}"


def measure_all(tensors: Sequence[torch.Tensor]) -> list[tuple[float, str | None]]:
    """`measure` of each tensor, the norms fused and shared within the op (`norms`); only
    a tensor whose norm is not finite is looked at again, alone."""
    plain = list(tensors)
    fused = [i for i, t in enumerate(plain) if t.layout == torch.strided and not t.is_complex()]
    found = norms([plain[i] for i in fused])
    known = dict(zip(fused, found, strict=True))
    out = []
    for i, t in enumerate(plain):
        norm = known.get(i)
        out.append((norm, None) if norm is not None and math.isfinite(norm) else measure(t))
    return out


def nonfinite_all(tensors: Sequence[torch.Tensor]) -> list[str | None]:
    """Which elements of each tensor are not finite (`measure`'s second value), None for a
    finite tensor. A norm known already answers; else the tensor's sum, which is finite only
    when every element is (a NaN or an Inf makes it NaN or infinite) and costs a third of a
    norm; only a tensor whose sum is not finite is looked at again, alone (its elements may
    be finite with a sum that overflowed)."""
    out: list[str | None] = []
    for t in tensors:
        norm = known(t)
        if norm is None and t.layout == torch.strided and not t.is_complex():
            norm = float(t.detach().sum())
        out.append(None if norm is not None and math.isfinite(norm) else measure(t)[1])
    return out


def version_sum(tensors: Iterable[torch.Tensor]) -> int:
    return sum(t._version for t in tensors)
