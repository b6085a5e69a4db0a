"""Measuring tensors for the detectors: one reduction per tensor, non-finite elements named."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


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


def version_sum(tensors: Iterable[torch.Tensor]) -> int:
    return sum(t._version for t in tensors)
