"""The loss landscape screen (key L): a contour with the trajectories, or the loss along
the last step. The data come computed on the engine thread (the debugger's `Landscape`
outcome); this only draws them."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static
from textual_plotext import PlotextPlot

from optdbg.engine import fmt

from .keys import KeyFooter

if TYPE_CHECKING:
    from optdbg.engine.debugger import Landscape
    from optdbg.engine.landscape import Contour, Profile

BANDS = (
    "#1b0c41",
    "#2c115f",
    "#3b2f80",
    "#31688e",
    "#26828e",
    "#1f9e89",
    "#35b779",
    "#6ece58",
    "#b5de2b",
    "#fde725",
)
"""Background colours of the contour's bands, low to high (viridis)."""
COLORS = ("#ff5f5f", "#ffaf00", "#ffffff", "#ff87ff", "#00d7ff", "#d7ff5f", "#ff8700", "#afafff")
"""The variants' colours on the contour and in the plots (the same order everywhere)."""
PLOT_COLORS = ("red", "orange", "white", "magenta", "cyan", "green", "yellow", "blue")


def contour_text(data: Contour, width: int, height: int) -> Text:
    """The loss as coloured bands (log-spaced levels), each trajectory drawn over it: its
    steps as the variant's number, the segments between them as dots (those that touch the
    map: a run that diverges is seen leaving it), the start as ◆."""
    from optdbg.engine.plots import contour_levels  # torch: not before the first frame

    grid = _resample(data.loss, width, height)
    levels = contour_levels([v for row in grid for v in row if math.isfinite(v)], len(BANDS))
    chars = [[" "] * width for _ in range(height)]
    fgs: list[list[str | None]] = [[None] * width for _ in range(height)]
    x0, x1, y0, y1 = data.xs[0], data.xs[-1], data.ys[0], data.ys[-1]

    def cell(x: float, y: float) -> tuple[float, float]:
        col = (x - x0) / (x1 - x0) * (width - 1) if x1 > x0 else 0.0
        row = (y1 - y) / (y1 - y0) * (height - 1) if y1 > y0 else 0.0
        return col, row

    for k, path in enumerate(data.paths):
        color = COLORS[k % len(COLORS)]
        points = [cell(x, y) for x, y in path if math.isfinite(x) and math.isfinite(y)]
        for a, b in itertools.pairwise(points):
            if not (_inside(a, width, height) or _inside(b, width, height)):
                continue  # far off the map, float32 rounding would draw a false line
            cells = _segment(a, b, width, height)
            for c, r in cells:
                if chars[r][c] == " ":
                    chars[r][c], fgs[r][c] = "·", color
            if cells and not _inside(b, width, height):  # where the run leaves the map
                c, r = cells[-1]
                chars[r][c], fgs[r][c] = str(k + 1), color
        for n, (fc, fr) in enumerate(points):
            c, r = round(fc), round(fr)
            if 0 <= c < width and 0 <= r < height:
                chars[r][c] = "◆" if n == 0 else str(k + 1)
                fgs[r][c] = color
    best = data.minimum()
    if best is not None:
        c, r = (round(v) for v in cell(best[0], best[1]))
        if 0 <= c < width and 0 <= r < height and chars[r][c] == " ":
            chars[r][c], fgs[r][c] = "*", "#ffffff"
    text = Text(no_wrap=True)
    for r in range(height):
        for c in range(width):
            band = _band(grid[r][c], levels)
            bg = BANDS[band] if band is not None else "#000000"
            fg = fgs[r][c] or "#000000"
            text.append(chars[r][c], style=f"bold {fg} on {bg}")
        if r < height - 1:
            text.append("\n")
    return text


def _resample(loss: Sequence[Sequence[float]], width: int, height: int) -> list[list[float]]:
    """The grid at `width` × `height` cells, top row = highest y (nearest grid point)."""
    rows, cols = len(loss), len(loss[0]) if loss else 0
    out = []
    for r in range(height):
        j = rows - 1 - round(r * (rows - 1) / max(height - 1, 1))
        out.append([loss[j][round(c * (cols - 1) / max(width - 1, 1))] for c in range(width)])
    return out


def _band(value: float, levels: Sequence[float]) -> int | None:
    if not math.isfinite(value) or not levels:
        return None
    for k, level in enumerate(levels[1:]):
        if value <= level:
            return min(k, len(BANDS) - 1)
    return len(BANDS) - 1


def _inside(point: tuple[float, float], width: int, height: int) -> bool:
    return -0.5 <= point[0] <= width - 0.5 and -0.5 <= point[1] <= height - 0.5


def _segment(
    a: tuple[float, float], b: tuple[float, float], width: int, height: int
) -> list[tuple[int, int]]:
    """The cells on the segment a-b (in cell coordinates) that lie on the map: clipped to
    it first (Liang-Barsky), so a step that flies far off still shows where it leaves."""
    (c0, r0), (c1, r1) = a, b
    dc, dr = c1 - c0, r1 - r0
    lo, hi = 0.0, 1.0
    for p, q in ((-dc, c0), (dc, width - 1 - c0), (-dr, r0), (dr, height - 1 - r0)):
        if p == 0:
            if q < 0:
                return []
            continue
        t = q / p
        if p < 0:
            lo = max(lo, t)
        else:
            hi = min(hi, t)
        if lo > hi:
            return []
    steps = max(1, round(max(abs(dc), abs(dr)) * (hi - lo)))
    cells = []
    for i in range(steps + 1):
        t = lo + (hi - lo) * i / steps
        c, r = round(c0 + dc * t), round(r0 + dr * t)
        if 0 <= c < width and 0 <= r < height:
            cells.append((c, r))
    return cells


def legend(data: Contour) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    for k, label in enumerate(data.labels):
        path = data.paths[k]
        end = path[-1] if path else None
        where = f" → ({fmt.num(end[0], 4)}, {fmt.num(end[1], 4)})" if end else ""
        text.append(f" {k + 1} ", style=f"bold #000000 on {COLORS[k % len(COLORS)]}")
        text.append(f" {label}{where}  ")
    best = data.minimum()
    if best is not None:
        text.append(f" * lowest on the grid {fmt.num(best[2], 5)} ", style="dim")
    return text


def axes_line(data: Contour) -> str:
    x0, x1, y0, y1 = data.xs[0], data.xs[-1], data.ys[0], data.ys[-1]
    holes = f" · {data.failed} points failed" if data.failed else ""
    return (
        f" x: {data.axes[0]} from {fmt.num(x0, 4)} to {fmt.num(x1, 4)} · "
        f"y: {data.axes[1]} from {fmt.num(y0, 4)} (bottom) to {fmt.num(y1, 4)} (top){holes}"
    )


class LandscapeScreen(Screen[None]):
    """The landscape, drawn from data the engine computed; `e` writes it to PNG."""

    DEFAULT_CSS = """
    LandscapeScreen { layout: vertical; }
    LandscapeScreen #landscape-title, LandscapeScreen #landscape-axes,
    LandscapeScreen #landscape-legend { height: 1; }
    LandscapeScreen #landscape-map, LandscapeScreen #landscape-plot { height: 1fr; }
    """

    BINDINGS = [
        Binding("escape,L", "app.pop_screen", "back"),
        Binding("e", "app.export_landscape", "export PNG"),
        Binding("S", "app.landscape_slice", "2-D slice", show=False),
    ]

    def __init__(self, landscape: Landscape) -> None:
        super().__init__()
        self.landscape = landscape

    def compose(self) -> ComposeResult:
        yield Static(
            Text(f" Loss landscape · {self.landscape.title} ", style="bold reverse"),
            id="landscape-title",
        )
        data = self.landscape
        if data.contour is not None:
            yield Static(id="landscape-map")
            yield Static(axes_line(data.contour), id="landscape-axes")
            yield Static(legend(data.contour), id="landscape-legend")
        else:
            yield PlotextPlot(id="landscape-plot")
            yield Static(self._profile_note(), id="landscape-axes")
        yield KeyFooter()

    def _profile_note(self) -> str:
        return (
            " f(θ_before + α·Δθ): α = 0 before the last step, α = 1 after it; a minimum "
            "left of 1 means the step overshot · S: the 2-D slice (step × random direction)"
        )

    def on_mount(self) -> None:
        self.call_after_refresh(self._draw)

    def on_resize(self) -> None:
        self.call_after_refresh(self._draw)

    def _draw(self) -> None:
        data = self.landscape
        if data.contour is not None:
            area = self.query_one("#landscape-map", Static)
            width = max(10, area.size.width or self.size.width)
            height = max(5, area.size.height or self.size.height - 4)
            area.update(contour_text(data.contour, width, height))
            return
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        _draw_profiles(plt, data.profiles)
        plot.refresh()


def _draw_profiles(plt: object, profiles: Sequence[Profile]) -> None:
    from optdbg.engine.plots import curve_range

    p = plt  # plotext's module-like API
    limits = curve_range([pr.losses for pr in profiles])
    if limits is not None and limits[2]:
        p.yscale("log")  # type: ignore[attr-defined]
    for k, pr in enumerate(profiles):
        pts = [(a, v) for a, v in zip(pr.alphas, pr.losses, strict=True) if math.isfinite(v)]
        if pts:
            xs, ys = zip(*pts, strict=True)
            p.plot(  # type: ignore[attr-defined]
                list(xs),
                list(ys),
                color=PLOT_COLORS[k % len(PLOT_COLORS)],
                marker="braille",
                label=pr.label or None,
            )
    p.vline(0, "gray")  # type: ignore[attr-defined]
    p.vline(1, "gray")  # type: ignore[attr-defined]
    p.title("loss along the last step: α = 0 before it, α = 1 after it")  # type: ignore[attr-defined]
    p.xlabel("α")  # type: ignore[attr-defined]
