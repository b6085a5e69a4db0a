"""Pictures as files: the loss curves overlaid and the loss landscape, PNG or SVG.

Drawn with matplotlib's object API on its Agg canvas (no pyplot, no global backend), so
it works headless and leaves a user's matplotlib settings alone. `curve_range` is also
what the TUI's plots use, so a diverging variant never flattens the others there either.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .landscape import Contour, LandscapeError, Profile, contour, kind, profile

if TYPE_CHECKING:
    from .session import Session

FORMATS = (".png", ".svg")
DIVERGED_FACTOR = 10.0
"""A curve is drawn off the top once it exceeds this many times the largest first value."""


class PlotError(Exception):
    """A picture that cannot be written (the message says why)."""


def curve_range(curves: Sequence[Sequence[float]]) -> tuple[float, float, bool] | None:
    """(low, high, log scale) for plotting loss curves together: the range of their finite
    values up to DIVERGED_FACTOR times the largest first value (beyond it, a diverging
    curve runs off the top instead of squeezing the others flat); log scale when that
    range is positive and spans more than two decades."""
    firsts = [c[0] for c in curves if c and math.isfinite(c[0])]
    if not firsts:
        return None
    top = max(firsts)
    limit = DIVERGED_FACTOR * top if top > 0 else math.inf
    kept = [v for c in curves for v in c if math.isfinite(v) and v <= limit]
    lo, hi = min(kept), max(kept)
    log = lo > 0 and hi / lo > 100
    if hi == lo:
        pad = abs(hi) * 0.05 or 1.0
        return lo - pad, hi + pad, False
    return lo, hi, log


def _target(path: str | Path, force: bool) -> Path:
    target = Path(path)
    if target.suffix.lower() not in FORMATS:
        raise PlotError(f"cannot tell the format of {str(path)!r}: name the file .png or .svg")
    if target.exists() and not force:
        raise PlotError(f"{target} exists: choose another name, or pass --force to replace it")
    return target


def _figure(width: float = 7.0, height: float = 4.5) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=120, layout="constrained")


def _save(fig: Any, target: Path, what: str) -> str:
    try:
        fig.savefig(target)
    except OSError as e:
        raise PlotError(f"cannot write {target}: {e.strerror or e}") from None
    return f"{what} written: {target.resolve()}"


def write_loss_curves(
    path: str | Path,
    labels: Sequence[str],
    curves: Sequence[Sequence[float]],
    title: str = "",
    force: bool = False,
) -> str:
    """Every variant's loss per forward, overlaid (log scale when spanning decades)."""
    target = _target(path, force)
    fig = _figure()
    ax = fig.add_subplot()
    limits = curve_range(curves)
    for label, curve in zip(labels, curves, strict=True):
        xs = [i + 1 for i, v in enumerate(curve) if math.isfinite(v)]
        ys = [v for v in curve if math.isfinite(v)]
        notes = [f"{len(curve) - len(ys)} non-finite"] if len(ys) < len(curve) else []
        if limits is not None and any(v > limits[1] for v in ys):
            notes.insert(0, "runs off the top")
        ax.plot(
            xs,
            ys,
            marker="o",
            markersize=2.5,
            linewidth=1.2,
            label=label + (f" ({', '.join(notes)})" if notes else ""),
        )
    if limits is not None:
        lo, hi, log = limits
        if log:
            ax.set_yscale("log")
            ax.set_ylim(lo / 1.5, hi * 1.5)
        else:
            pad = (hi - lo) * 0.05
            ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel("forward")
    ax.set_ylabel("loss")
    ax.set_title(title or "loss")
    ax.grid(True, alpha=0.3)
    if labels:
        ax.legend(fontsize="small")
    return _save(fig, target, "loss curves")


def write_contour(path: str | Path, data: Contour, title: str = "", force: bool = False) -> str:
    """The contour of the loss with each trajectory's steps drawn on it."""
    import numpy as np
    from matplotlib.colors import BoundaryNorm
    from matplotlib.figure import Figure

    target = _target(path, force)
    z = np.array(data.loss, dtype=float)
    fig: Figure = _figure(6.5, 5.5)
    ax = fig.add_subplot()
    levels = contour_levels(z[np.isfinite(z)].tolist())
    if len(levels) > 1:
        norm = BoundaryNorm(levels, 256)
        filled = ax.contourf(data.xs, data.ys, z, levels=levels, norm=norm, cmap="viridis")
        ax.contour(data.xs, data.ys, z, levels=levels, colors="white", linewidths=0.4)
        fig.colorbar(filled, ax=ax, label="loss", format="%.4g")
    for label, points in zip(data.labels, data.paths, strict=True):
        px = [p[0] for p in points]
        py = [p[1] for p in points]
        ax.plot(px, py, marker="o", markersize=3, linewidth=1.2, label=label)
        if points:
            ax.plot(px[:1], py[:1], marker="s", color="white", markersize=5)
    best = data.minimum()
    if best is not None:
        ax.plot(
            [best[0]],
            [best[1]],
            marker="*",
            color="red",
            markersize=9,
            linestyle="none",
            label=f"lowest on grid ({best[2]:.4g})",
        )
    ax.set_xlim(data.xs[0], data.xs[-1])
    ax.set_ylim(data.ys[0], data.ys[-1])
    ax.set_xlabel(data.axes[0])
    ax.set_ylabel(data.axes[1])
    ax.set_title(title or "loss landscape")
    ax.legend(fontsize="small", loc="best")
    return _save(fig, target, "loss landscape")


def contour_levels(values: Sequence[float], count: int = 14) -> list[float]:
    """Contour levels for a set of losses: log-spaced above the minimum when they span
    decades (near a minimum the interesting detail is close to the bottom), else even."""
    if not values:
        return []
    lo, hi = min(values), max(values)
    if hi <= lo:
        return [lo]
    spread = hi - lo
    base = spread * 1e-4
    if spread / max(abs(lo), base) > 100 or lo <= 0 < hi:
        ratio = (spread + base) / base
        return [lo - base + base * ratio ** (k / count) for k in range(count + 1)]
    return [lo + spread * k / count for k in range(count + 1)]


def write_profiles(
    path: str | Path, profiles: Sequence[Profile], title: str = "", force: bool = False
) -> str:
    """The loss along each variant's last step, α = 0 before it and α = 1 after it."""
    target = _target(path, force)
    fig = _figure()
    ax = fig.add_subplot()
    curves = [p.losses for p in profiles]
    for p in profiles:
        xs = [a for a, v in zip(p.alphas, p.losses, strict=True) if math.isfinite(v)]
        ys = [v for v in p.losses if math.isfinite(v)]
        ax.plot(xs, ys, linewidth=1.4, label=f"{p.label} (‖Δθ‖ {p.step_norm:.3g})".strip())
    for alpha, text in ((0.0, "before the step"), (1.0, "after the step")):
        ax.axvline(alpha, color="gray", linestyle="--", linewidth=0.8)
        ax.annotate(
            text,
            (alpha, 1.0),
            xycoords=("data", "axes fraction"),
            fontsize="small",
            ha="center",
            va="bottom",
        )
    limits = curve_range(curves)
    if limits is not None and limits[2]:
        ax.set_yscale("log")
    ax.set_xlabel("α  (θ = θ_before + α·Δθ)")
    ax.set_ylabel("loss")
    ax.set_title(title or "loss along the last step", pad=14)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, target, "loss along the last step")


def write_landscape(
    path: str | Path,
    sessions: Sequence[Session],
    labels: Sequence[str],
    title: str = "",
    force: bool = False,
) -> str:
    """The contour (two parameter elements) or the loss along the last step (larger)."""
    _target(path, force)
    try:
        if kind(sessions[0]) == "contour":
            return write_contour(path, contour(sessions, labels, 81, 81), title, force)
        return write_profiles(
            path,
            [profile(s, label) for s, label in zip(sessions, labels, strict=True)],
            title,
            force,
        )
    except LandscapeError as e:
        raise PlotError(f"no landscape to write: {e}") from None
