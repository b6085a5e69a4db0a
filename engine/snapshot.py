"""Immutable, detached views of tensors and of the session's state.

The UI and the CLI only ever see these: plain Python numbers copied out of torch,
never live tensors of the running loop.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

SMALL = 64
"""Tensors with at most this many elements are shown (and written) in full."""


@dataclass(frozen=True)
class Summary:
    mean: float
    std: float
    min: float
    max: float
    norm: float

    def as_dict(self) -> dict[str, float]:
        return {
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
            "norm": self.norm,
        }


@dataclass(frozen=True)
class TensorView:
    """A detached copy of a tensor: values when small, a summary when large."""

    shape: tuple[int, ...]
    dtype: str
    device: str
    values: Any = None
    summary: Summary | None = None

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def is_small(self) -> bool:
        return self.summary is None

    def flat(self) -> list[Any]:
        """The values as a flat list (small tensors only)."""
        return list(_flatten(self.values))

    def to_json(self) -> Any:
        if self.summary is None:
            return self.values
        return {"shape": list(self.shape), **self.summary.as_dict()}


def _flatten(values: Any) -> Any:
    if isinstance(values, list):
        for v in values:
            yield from _flatten(v)
    else:
        yield values


PROOF_BYTES = 64 << 20
"""A Session's memo (kept across ops) proves its views with copies of at most this many
bytes in all."""


class ViewMemo:
    """Views of tensors by identity and version counter, the tensors held weakly (a memo
    keeps no tensor alive).

    A version counter does not see every write (an in-place op through `.data`, a fused
    optimizer step): after an op that may write so, `suspect()` marks every view unproven.
    An unproven view is used again only if a copy of the tensor's bits kept with it still
    matches them exactly (one compare instead of a summary, whose std alone costs 100 times
    a pass over the data); the copies of all views total at most `proof_bytes`, and a view
    without one is recomputed. `clear()` forgets everything."""

    def __init__(self, proof_bytes: int = 0) -> None:
        self._views: dict[tuple[int, int], _Memo] = {}
        self._proof_budget = proof_bytes
        self._proof_bytes = 0

    def get(self, t: torch.Tensor, small: int) -> TensorView:
        try:
            version = t._version
        except RuntimeError:  # inference tensors keep no version counter
            return _view(t, small)
        key = (id(t), small)
        hit = self._views.get(key)
        same = hit is not None and hit.ref() is t and hit.version == version
        if same and hit is not None and (hit.proven or _still(hit, t)):
            hit.proven = True
            return hit.view
        if hit is not None:
            self._drop(key)
        result = _view(t, small)
        self._views[key] = _Memo(
            weakref.ref(t, _dropper(self, key)), version, result, self._proof(t, result)
        )
        return result

    def put(
        self,
        t: torch.Tensor,
        seen: TensorView,
        small: int = SMALL,
        *,
        private: bool = False,
    ) -> None:
        """Keep `seen` as the view of `t` as it is now (it must be exactly `t`'s view).
        `private`: a tensor only optdbg holds (a copy it made), whose view `suspect()`
        keeps, since no other code can write it."""
        try:
            version = t._version
        except RuntimeError:
            return
        key = (id(t), small)
        self._drop(key)
        ref = weakref.ref(t, _dropper(self, key))
        self._views[key] = _Memo(ref, version, seen, None, private=private)

    def _proof(self, t: torch.Tensor, seen: TensorView) -> torch.Tensor | None:
        """A copy of a big tensor's bits, if the budget has room for it."""
        size = t.numel() * t.element_size()
        if seen.is_small or t.layout != torch.strided:
            return None
        if self._proof_bytes + size > self._proof_budget:
            return None
        self._proof_bytes += size
        return t.detach().clone()

    def known(self, t: torch.Tensor, small: int = SMALL) -> TensorView | None:
        """The view of `t` if the memo holds it still valid and proven (nothing computed)."""
        hit = self._current(t, small)
        return hit.view if hit is not None and hit.proven else None

    def checked(self, t: torch.Tensor) -> TensorView | None:
        """The view of `t` (as `view` takes it) if the memo holds it and its copy of the
        bits still matches them (one compare, no summary), whatever ran since it was
        proven (an op's code may just have written `t` behind its version counter)."""
        hit = self._current(t, SMALL)
        return hit.view if hit is not None and (hit.private or _still(hit, t)) else None

    def _current(self, t: torch.Tensor, small: int) -> _Memo | None:
        """The memo of this very tensor at its current version, if any."""
        try:
            version = t._version
        except RuntimeError:  # inference tensors keep no version counter
            return None
        hit = self._views.get((id(t), small))
        return hit if hit is not None and hit.ref() is t and hit.version == version else None

    def suspect(self) -> None:
        """Every view must be proven again before it is used (see the class docstring)."""
        for key, memo in list(self._views.items()):
            if memo.private:
                continue
            if memo.proof is None:
                self._drop(key)
            else:
                memo.proven = False

    def clear(self) -> None:
        self._views = {}
        self._proof_bytes = 0

    def _drop(self, key: tuple[int, int]) -> None:
        memo = self._views.pop(key, None)
        if memo is not None and memo.proof is not None:
            self._proof_bytes -= memo.proof.numel() * memo.proof.element_size()


def _dropper(memo: ViewMemo, key: tuple[int, int]) -> Callable[[object], None]:
    """A weakref callback: the tensor died, its view (and proof copy) go (the memo is held
    weakly too: the callback keeps nothing alive)."""
    held = weakref.ref(memo)

    def drop(_ref: object) -> None:
        alive = held()
        if alive is not None:
            alive._drop(key)

    return drop


def _still(memo: _Memo, t: torch.Tensor) -> bool:
    return memo.proof is not None and same_bits(memo.proof, t)


@dataclass
class _Memo:
    ref: weakref.ref[torch.Tensor]
    version: int
    view: TensorView
    proof: torch.Tensor | None
    proven: bool = True
    private: bool = False


_INTS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def _bits(t: torch.Tensor) -> torch.Tensor:
    """The raw bits as integers of the same width (NaNs with equal bits compare equal)."""
    flat = t.detach().reshape(-1)
    return flat.view(_INTS.get(flat.element_size(), torch.uint8))


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Two tensors hold the same bits in the same layout (NaN payloads and -0.0 included)."""
    if a.layout != torch.strided or b.layout != torch.strided:
        return False  # sparse: never shared
    return (
        a.shape == b.shape
        and a.dtype == b.dtype
        and a.device == b.device
        and a.stride() == b.stride()
        and bool(torch.equal(_bits(a), _bits(b)))
    )


_memo = threading.local()


@contextmanager
def shared_views(memo: ViewMemo | None = None) -> Iterator[None]:
    """Within the block, `view` copies each tensor out once (the same tensor object,
    unchanged since, gives the same view): a snapshot and an update detail taken together
    see the same grads and optimizer state. Per thread; nothing may modify tensors in it.
    With `memo`, the views are looked up and kept there (a Session keeps its memo across
    the ops that cannot change a tensor behind its version counter)."""
    outer = getattr(_memo, "views", None)
    _memo.views = memo if memo is not None else (ViewMemo() if outer is None else outer)
    try:
        yield
    finally:
        _memo.views = outer


def view(t: torch.Tensor | None, small: int = SMALL) -> TensorView | None:
    """Copy a tensor out of torch: exact values (tolist) when small, else a summary."""
    if t is None:
        return None
    memo: ViewMemo | None = getattr(_memo, "views", None)
    if memo is None:
        return _view(t, small)
    return memo.get(t, small)


def _view(t: torch.Tensor, small: int) -> TensorView:
    t = t.detach()
    if t.layout != torch.strided:  # sparse grads (e.g. Embedding(sparse=True)): show them dense
        t = t.to_dense()
    shape = tuple(t.shape)
    dtype = str(t.dtype).removeprefix("torch.")
    device = str(t.device)
    if t.numel() <= small:
        return TensorView(shape, dtype, device, values=t.tolist())
    return TensorView(shape, dtype, device, summary=summarize(t))


def summarize(t: torch.Tensor) -> Summary:
    """mean, std, min, max, norm computed on the torch side in one pass over the data."""
    mean, std, lo, hi, norm = summary_stats(t).tolist()
    return Summary(mean, std, lo, hi, norm)


def summary_stats(t: torch.Tensor) -> torch.Tensor:
    """The five numbers of `summarize` as one tensor on t's device (not copied out yet, so
    many can be brought over in one transfer)."""
    x = t.detach()
    if not x.is_floating_point() and not x.is_complex():
        x = x.double()
    if x.is_complex():
        x = x.abs()
    lo, hi = torch.aminmax(x)  # one pass for both (the same values as min() and max())
    return torch.stack([x.mean(), x.std() if x.numel() > 1 else x.new_zeros(()), lo, hi, x.norm()])


@dataclass(frozen=True)
class ParamSnapshot:
    name: str
    group: int
    value: TensorView
    grad: TensorView | None
    accumulated: int
    """Backward passes summed into .grad since it was last cleared."""
    last_update: TensorView | None
    """Value after minus value before the last step that moved this parameter."""
    state: Mapping[str, Any] = field(default_factory=dict)
    """The optimizer's per-parameter state: TensorViews and plain numbers (empty where the
    snapshot was asked for other parameters' states only, see `Session.snapshot`)."""
    requires_grad: bool = True


@dataclass(frozen=True)
class Snapshot:
    """Everything the session holds after an op, detached."""

    scenario: str
    title: str
    op_count: int
    step_count: int
    iteration: int
    epoch: int
    batch: int
    batches_per_epoch: int | None
    has_data: bool
    loss: float | None
    loss_history: tuple[float, ...]
    loss_steps: tuple[int, ...]
    """For each loss in loss_history, the op index of the forward that produced it."""
    next_op: str
    optimizer: str
    groups: tuple[Mapping[str, Any], ...]
    """Each param group's hyperparameters (everything but the params)."""
    params: tuple[ParamSnapshot, ...]
    has_graph: bool
    evals: tuple[tuple[int, Mapping[str, float]], ...] = ()
    """Each evaluation so far: (training losses recorded before it, its named numbers)."""

    @property
    def eval_losses(self) -> tuple[tuple[int, float], ...]:
        """(x beside the loss series, evaluation loss) per evaluation, for plotting."""
        out = []
        for at, values in self.evals:
            loss = values["loss"] if "loss" in values else next(iter(values.values()), None)
            if loss is not None:
                out.append((at, loss))
        return tuple(out)

    @property
    def lrs(self) -> tuple[float, ...]:
        return tuple(float(g["lr"]) for g in self.groups if "lr" in g)

    def param(self, name: str) -> ParamSnapshot | None:
        return next((p for p in self.params if p.name == name), None)


def plain(value: Any) -> Any:
    """Hyperparameters and state entries as JSON-friendly detached values."""
    if isinstance(value, torch.Tensor):
        return view(value)
    if isinstance(value, tuple | list):
        return type(value)(plain(v) for v in value)
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return repr(value)
