"""The loss landscape around the run, computed without changing it.

For two parameter elements (two scalars, or one tensor of two), the loss over a box that
holds the trajectory; for larger models, the loss along the last step's direction
f(θ + α·Δθ), and optionally over a 2-D slice spanned by the step and a random direction
(Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets").

Evaluating the landscape calls the scenario's own loss function (its forward, on the batch
of the latest forward) at other parameter values, and then puts everything back: the
parameters' values (written through `.data`, so their autograd version counters and the
current graph stay valid), module buffers, every random number generator (restored before
each point too, so dropout draws the same mask everywhere), and the scenario's top-level
names (rebound, and lists, dicts and sets refilled in place). It runs under
`torch.no_grad()` with the scenario's prints discarded. What it cannot undo is a side
effect outside the scenario's globals (a file written, an object nested inside a global
mutated): a forward with such effects has them once per point evaluated.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .history import RngState, find_generators
from .session import Session

CONTOUR_POINTS = 41
"""Grid points per axis of a contour (the TUI asks for one per character cell)."""
ALPHAS = tuple(-0.5 + 2.0 * i / 20 for i in range(21))
"""Where the loss along the last step is evaluated: θ + α·Δθ, α from -0.5 to 1.5 by 0.1
(0 and 1 exactly among them)."""
BOX_LOSS_FACTOR = 10.0
"""The contour's box holds the trajectory's points whose loss is at most this many times
the largest starting loss (a diverging run flies off the box)."""


class LandscapeError(ValueError):
    """The landscape cannot be drawn now (the message says why and what to do)."""


@dataclass(frozen=True)
class Contour:
    """The loss over a box of two parameter elements, with each variant's trajectory."""

    axes: tuple[str, str]
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    loss: tuple[tuple[float, ...], ...]
    """loss[j][i] is the loss at (xs[i], ys[j])."""
    paths: tuple[tuple[tuple[float, float], ...], ...]
    labels: tuple[str, ...]
    failed: int = 0
    """Grid points where the forward raised (NaN in `loss`)."""

    def minimum(self) -> tuple[float, float, float] | None:
        """(x, y, loss) of the lowest finite grid point."""
        best = None
        for j, row in enumerate(self.loss):
            for i, value in enumerate(row):
                if math.isfinite(value) and (best is None or value < best[2]):
                    best = (self.xs[i], self.ys[j], value)
        return best


@dataclass(frozen=True)
class Profile:
    """The loss along the last step: f(θ_before + α·Δθ) for each α (α = 1: θ now)."""

    label: str
    alphas: tuple[float, ...]
    losses: tuple[float, ...]
    step_norm: float
    """‖Δθ‖ over every parameter."""


def kind(session: Session) -> str:
    """ "contour" for two parameter elements, else "profile"."""
    return "contour" if sum(p.numel() for _, p in session.scenario.params) == 2 else "profile"


def axis_names(session: Session) -> tuple[str, str]:
    names = []
    for name, p in session.scenario.params:
        names += [name] if p.numel() == 1 else [f"{name}[{i}]" for i in range(p.numel())]
    return names[0], names[1]


# ----------------------------------------------------------------- evaluating safely


class Probe:
    """Evaluates a session's loss at other parameter values; leaves everything as it was.

    Use as a context manager on the thread that runs the session's ops."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.scenario = session.scenario
        self.params = [p for _, p in session.scenario.params]
        self.failed = 0

    def __enter__(self) -> Probe:
        ns = self.scenario.namespace
        self._values = [p.detach().clone() for p in self.params]
        self._buffers = [(b, b.detach().clone()) for b in _buffers(ns)]
        self._gens = find_generators(ns, self.scenario.data)
        self._rng = RngState.capture(self._gens)
        self._globals = {k: (v, _contents(v)) for k, v in ns.items()}
        self._quiet = contextlib.ExitStack()
        sink = io.StringIO()
        self._quiet.enter_context(contextlib.redirect_stdout(sink))
        self._quiet.enter_context(contextlib.redirect_stderr(sink))
        self._quiet.enter_context(torch.no_grad())
        self._batch = self._batch_to_use()
        return self

    def __exit__(self, *_exc: object) -> None:
        try:
            self._put_back()
        finally:
            self._quiet.close()

    def _batch_to_use(self) -> Any:
        """The batch of the latest forward; before any, the first of a fresh pass over
        `data` (its iterator and RNGs are put back afterwards)."""
        if self.scenario.data is None:
            return None
        if self.session.last_batch is not None:
            return self.session.last_batch
        try:
            return next(iter(self.scenario.data))
        except Exception as e:  # the scenario's data: its error, in words
            why = f"cannot draw a batch from `data`: {type(e).__name__}: {e}"
            raise LandscapeError(why) from None

    def _put_back(self) -> None:
        for p, saved in zip(self.params, self._values, strict=True):
            p.data.copy_(saved)
        for b, saved in self._buffers:
            b.data.copy_(saved)
        self._rng.restore(self._gens)
        ns = self.scenario.namespace
        for key in [k for k in ns if k not in self._globals]:
            del ns[key]
        for key, (value, contents) in self._globals.items():
            ns[key] = value
            _refill(value, contents)

    def set_flat(self, flat: Sequence[float]) -> None:
        """Every parameter's elements, in order, from one flat list."""
        start = 0
        for p in self.params:
            n = p.numel()
            values = torch.tensor(flat[start : start + n], dtype=torch.float64)
            p.data.copy_(values.reshape(p.shape))
            start += n

    def set_along(self, base: list[torch.Tensor], *terms: tuple[float, list[torch.Tensor]]) -> None:
        """Parameters = base + Σ coefficient·direction (per tensor, in its dtype)."""
        for k, p in enumerate(self.params):
            value = base[k].clone()
            for coefficient, direction in terms:
                value.add_(direction[k], alpha=coefficient)
            p.data.copy_(value)

    def loss(self) -> float:
        """The scenario's loss at the parameters set now (NaN when the forward raised or
        returned no scalar)."""
        self._rng.restore(self._gens)
        try:
            value = self.scenario.forward(self._batch)
            return float(value.detach().reshape(()).item())
        except Exception:  # a point where the scenario's code fails is a hole in the map
            self.failed += 1
            return math.nan


def _buffers(ns: dict[str, Any]) -> list[torch.Tensor]:
    seen: dict[int, torch.Tensor] = {}
    for key, value in ns.items():
        if not key.startswith("__") and isinstance(value, torch.nn.Module):
            for b in value.buffers():
                seen.setdefault(id(b), b)
    return list(seen.values())


def _contents(value: Any) -> Any:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, set):
        return set(value)
    return None


def _refill(value: Any, contents: Any) -> None:
    if contents is None:
        return
    if isinstance(value, list):
        value[:] = contents
    elif isinstance(value, dict | set):
        value.clear()
        value.update(contents)


# ----------------------------------------------------------------- the pictures


def contour(
    sessions: Sequence[Session],
    labels: Sequence[str],
    columns: int = CONTOUR_POINTS,
    rows: int = CONTOUR_POINTS,
) -> Contour:
    """The loss of `sessions[0]` over a box holding every session's trajectory."""
    first = sessions[0]
    if kind(first) != "contour":
        raise LandscapeError("a contour needs exactly two parameter elements")
    paths = [tuple((p[0], p[1]) for p in s.trajectory()) for s in sessions]
    with Probe(first) as probe:
        x0, x1, y0, y1 = _box(probe, paths)
        xs = _linspace(x0, x1, columns)
        ys = _linspace(y0, y1, rows)
        grid = []
        for y in ys:
            row = []
            for x in xs:
                probe.set_flat([x, y])
                row.append(probe.loss())
            grid.append(tuple(row))
        failed = probe.failed
    return Contour(
        axes=axis_names(first),
        xs=xs,
        ys=ys,
        loss=tuple(grid),
        paths=tuple(paths),
        labels=tuple(labels),
        failed=failed,
    )


def _box(probe: Probe, paths: list[tuple[tuple[float, float], ...]]) -> tuple[float, ...]:
    """A box (x0, x1, y0, y1) holding every trajectory's start and its points whose loss
    stays within BOX_LOSS_FACTOR of the largest starting loss: a diverging run leaves the
    box (its path is drawn to the edge) instead of shrinking the others to a dot."""
    scored = []
    for path in paths:
        finite = [pt for pt in path if all(map(math.isfinite, pt))]
        losses = []
        for point in finite:
            probe.set_flat(list(point))
            losses.append(probe.loss())
        scored.append(list(zip(finite, losses, strict=True)))
    starts = [s[0][1] for s in scored if s and math.isfinite(s[0][1])]
    limit = BOX_LOSS_FACTOR * max(starts) if starts else math.inf
    kept = [s[0][0] for s in scored if s]
    kept += [pt for s in scored for pt, value in s[1:] if abs(value) <= abs(limit)]
    if not kept:
        raise LandscapeError("the trajectory has no finite point to draw around")
    xs = [p[0] for p in kept]
    ys = [p[1] for p in kept]
    return (*_padded(min(xs), max(xs)), *_padded(min(ys), max(ys)))


def _padded(lo: float, hi: float) -> tuple[float, float]:
    span = hi - lo
    if span <= 0:
        span = max(1.0, abs(lo))
        return lo - span / 2, hi + span / 2
    return lo - 0.1 * span, hi + 0.1 * span


def _linspace(lo: float, hi: float, n: int) -> tuple[float, ...]:
    if n < 2:
        return ((lo + hi) / 2,)
    return tuple(lo + (hi - lo) * i / (n - 1) for i in range(n))


def _last_step(session: Session) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """θ before the last step and Δθ, per parameter (zero Δ for one the step did not move)."""
    records = session.moved
    big = session.summarized_steps
    if big:
        raise LandscapeError(
            f"the last step of {big[0]} kept summaries, not copies (a parameter of more than "
            f"{session.record_copy_bytes / 2**20:g} MB): the loss along it cannot be drawn"
        )
    if not records:
        raise LandscapeError("no step yet: the loss along the last step needs one (press s)")
    base, delta = [], []
    for name, p in session.scenario.params:
        rec = records.get(name)
        if rec is None:
            base.append(p.detach().clone())
            delta.append(torch.zeros_like(p))
        else:
            base.append(rec[0])
            delta.append(rec[1] - rec[0])
    return base, delta


def profile(session: Session, label: str = "", alphas: Sequence[float] = ALPHAS) -> Profile:
    """The loss along the last step's direction, α = 0 the point it started from."""
    base, delta = _last_step(session)
    norm = math.sqrt(sum(float(d.double().pow(2).sum()) for d in delta))
    with Probe(session) as probe:
        losses = []
        for alpha in alphas:
            probe.set_along(base, (alpha, delta))
            losses.append(probe.loss())
    return Profile(label, tuple(alphas), tuple(losses), norm)


def slice2d(session: Session, label: str = "", points: int = 21, seed: int = 0) -> Contour:
    """The loss over θ_before + α·Δθ + β·d, d a random direction scaled per tensor to the
    step's size (drawn from its own generator seeded with `seed`: the scenario's random
    numbers are not touched); the step itself is the path from (0, 0) to (1, 0)."""
    base, delta = _last_step(session)
    gen = torch.Generator().manual_seed(seed)
    other = []
    for d in delta:
        r = torch.randn(d.shape, generator=gen, dtype=torch.float64).to(d.dtype)
        scale = float(d.double().norm()) / max(float(r.double().norm()), 1e-30)
        other.append(r * scale)
    alphas = _linspace(-0.5, 1.5, points)
    betas = _linspace(-1.0, 1.0, points)
    with Probe(session) as probe:
        grid = []
        for beta in betas:
            row = []
            for alpha in alphas:
                probe.set_along(base, (alpha, delta), (beta, other))
                row.append(probe.loss())
            grid.append(tuple(row))
        failed = probe.failed
    return Contour(
        axes=("α (along the step)", "β (random direction)"),
        xs=alphas,
        ys=betas,
        loss=tuple(grid),
        paths=(((0.0, 0.0), (1.0, 0.0)),),
        labels=(label or "the last step",),
        failed=failed,
    )
