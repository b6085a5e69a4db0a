"""The comparison view: several variants in lockstep, one row each, their loss curves
overlaid; the selected variant's usual panels one key (enter / C) away.

CompareApp is the debugger app with a `CompareDebugger` behind it: every op, undo, redo and
continue goes to all variants (on the one engine thread, each variant with its own RNG
state); hyperparameter edits, slow motion and the panels are the selected variant's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Static
from textual_plotext import PlotextPlot

from optdbg.engine import debugger as dbg
from optdbg.engine import fmt
from optdbg.engine.debugger import CompareView
from optdbg.engine.plots import curve_range

from .app import OptDbgApp
from .keys import KeyFooter
from .landscape_view import COLORS, PLOT_COLORS

if TYPE_CHECKING:
    from optdbg.engine.compare import Comparison, Pulse, Variant
    from optdbg.engine.debugger.facade import CompareDebugger, Debugger

SPARK = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 16
PLOT_POINTS = 400


def sparkline(values: Sequence[float], width: int = SPARK_WIDTH) -> str:
    """The last `width` values as block characters (log scale when they span decades;
    ↑ for a value that is not finite)."""
    tail = list(values[-width:])
    finite = [v for v in tail if math.isfinite(v)]
    if not finite:
        return "↑" * len(tail)
    log = min(finite) > 0 and max(finite) / min(finite) > 100
    scaled = [math.log10(v) if log else v for v in finite]
    lo, hi = min(scaled), max(scaled)
    out = []
    for v in tail:
        if not math.isfinite(v):
            out.append("↑")
            continue
        s = math.log10(v) if log else v
        k = 0 if hi == lo else round((s - lo) / (hi - lo) * (len(SPARK) - 1))
        out.append(SPARK[k])
    return "".join(out)


class VariantsTable(DataTable[Any]):
    """One row per variant: loss, lr, step, warnings, a sparkline of the loss."""

    class Chosen(Message):
        """The cursor moved to variant `index` (`show`: open its panels)."""

        def __init__(self, index: int, show: bool = False) -> None:
            super().__init__()
            self.index = index
            self.show = show

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_columns("", "variant", "loss", "lr", "step", "warn", "loss curve", "last")

    def show(self, pulses: Sequence[Pulse], chosen: int) -> None:
        with self.app.batch_update():
            if self.row_count != len(pulses):
                self.clear()
                for k in range(len(pulses)):
                    self.add_row(*[""] * 8, key=str(k))
            for k, p in enumerate(pulses):
                color = COLORS[k % len(COLORS)]
                cells = [
                    Text(f" {k + 1} ", style=f"bold #000000 on {color}"),
                    Text(p.label, style="bold" if k == chosen else ""),
                    fmt.num(p.loss),
                    fmt.num(p.lr),
                    str(p.step_count),
                    Text(str(p.warnings), style="bold $warning" if p.warnings else "dim"),
                    Text(sparkline(p.losses), style=color),
                    Text(p.last or ("error" if p.errors else ""), style="$warning"),
                ]
                for c, cell in enumerate(cells):
                    self.update_cell_at(Coordinate(k, c), cell, update_width=True)
            if self.cursor_row != chosen and self.row_count:
                self.move_cursor(row=chosen)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.post_message(self.Chosen(event.cursor_row))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """enter on a row: that variant's usual panels."""
        event.stop()
        self.post_message(self.Chosen(event.cursor_row, show=True))


class LossCurves(PlotextPlot):
    """Every variant's loss per forward in one plot; a diverging curve runs off the top."""

    BORDER_TITLE = "Loss, all variants"

    curves: reactive[tuple[tuple[str, tuple[float, ...]], ...]] = reactive(())

    def watch_curves(self, curves: tuple[tuple[str, tuple[float, ...]], ...]) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        limits = curve_range([c for _, c in curves])
        if limits is not None:
            lo, hi, log = limits
            if log:
                plt.yscale("log")
            plt.ylim(lo, hi)
        off = []
        for k, (label, values) in enumerate(curves):
            stride = max(1, len(values) // PLOT_POINTS)
            top = limits[1] if limits is not None else math.inf
            pts = [
                (i + 1, v)
                for i, v in enumerate(values)
                if i % stride == 0 and math.isfinite(v) and v <= top
            ]
            if any(not v <= top for v in values):
                off.append(str(k + 1))
            if pts:
                xs, ys = zip(*pts, strict=True)
                plt.plot(
                    list(xs),
                    list(ys),
                    marker="braille",
                    color=PLOT_COLORS[k % len(PLOT_COLORS)],
                    label=f"{k + 1} {label}",
                )
        note = f"  (off the top: {', '.join(off)})" if off else ""
        plt.title(f"loss per forward{note}")
        self.refresh()


class ComparisonScreen(Screen[None]):
    """The variants side by side: the table and the overlaid loss curves."""

    DEFAULT_CSS = """
    ComparisonScreen { layout: vertical; }
    ComparisonScreen #compare-title { height: 1; background: $panel; }
    ComparisonScreen VariantsTable { height: auto; max-height: 50%; }
    ComparisonScreen LossCurves { height: 1fr; min-height: 8; }
    """

    BINDINGS = [
        Binding("enter", "app.show_variant", "panels", tooltip="the selected variant's panels"),
        Binding("e", "app.export_losses", "export", tooltip="loss curves to PNG", show=False),
        Binding("L", "app.landscape", "landscape", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.view: CompareView | None = None

    def on_mount(self) -> None:
        if self.view is not None:
            self.show(self.view)
        else:
            self.query_one("#compare-title", Static).update(
                Text(" loading the variants (importing torch)… ", style="bold reverse")
            )

    def compose(self) -> ComposeResult:
        yield Static(id="compare-title")
        yield VariantsTable(id="variants")
        yield LossCurves(id="curves")
        yield KeyFooter()

    def show(self, view: CompareView, activity: str = "") -> None:
        self.view = view
        if not self.is_mounted:
            return
        snap = view.snapshot
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(f" {snap.title} ", style="bold reverse")
        title.append(f"  {len(view.pulses)} variants in lockstep · next: {snap.next_op}")
        title.append("  ↑↓ choose · enter panels · L landscape · e export", style="dim")
        if activity:
            title.append(f"  ⏳ {activity}", style="bold")
        self.query_one("#compare-title", Static).update(title)
        self.query_one(VariantsTable).show(view.pulses, view.chosen)
        self.query_one(LossCurves).curves = tuple((p.label, p.losses) for p in view.pulses)

    def on_variants_table_chosen(self, message: VariantsTable.Chosen) -> None:
        app = self.app
        if isinstance(app, CompareApp):
            app.choose(message.index)
            if message.show:
                app.action_show_variant()


class CompareApp(OptDbgApp):
    """The debugger over several variants in lockstep."""

    BINDINGS = [
        Binding("C", "comparison", "compare", tooltip="the comparison view ⇄ the panels"),
        Binding("left_square_bracket", "cycle(-1)", "previous variant", show=False),
        Binding("right_square_bracket", "cycle(1)", "next variant", show=False),
    ]

    class CompareProgress(Message):
        """A lockstep `continue` is running: every variant's counters."""

        def __init__(self, pulses: tuple[Pulse, ...], generation: int) -> None:
            super().__init__()
            self.pulses = pulses
            self.generation = generation

    def __init__(
        self,
        comparison: Comparison | None = None,
        *,
        variants: Sequence[Variant] = (),
        ops: Sequence[str] = (),
        repeat: int = 1,
        epochs: int | None = None,
    ) -> None:
        """Either loaded variants (`comparison`), or the variants to load once the app
        runs, with the ops (`repeat` times) and `epochs` to run first."""
        self.variants = list(comparison.variants if comparison else variants)
        self.chosen = 0
        """The variant whose panels, edits and slow motion are shown."""
        self._start = (list(ops), repeat, epochs)
        self._screen_view: ComparisonScreen | None = None
        first = _lockstep(comparison) if comparison else None
        super().__init__(first, scenario=None if first else self.variants[0].spec)
        self._plotted_all = 0.0

    def on_mount(self) -> None:
        super().on_mount()
        self._screen_view = ComparisonScreen()
        self.install_screen(self._screen_view, name="comparison")  # kept while hidden
        self.push_screen("comparison")

    # ------------------------------------------------------------- loading

    def open_debugger(self, spec: Any, overrides: dict[str, Any]) -> Debugger:
        """Load every variant (engine thread) and run the ops given on the command line."""
        from optdbg.engine.debugger.facade import CompareDebugger

        words, repeat, epochs = self._start
        debugger = CompareDebugger.start(self.variants, words, repeat, epochs)
        self.chosen = 0
        return debugger

    def on_opt_dbg_app_load_failed(self, message: OptDbgApp.LoadFailed) -> None:
        """A variant that cannot load: its message is on the main screen, shown at once
        (Textual runs the app's own handler after this one)."""
        if isinstance(self.screen, ComparisonScreen):
            self.pop_screen()

    def _apply(self, view: dbg.View) -> None:
        super()._apply(view)
        if isinstance(view, CompareView) and self._screen_view is not None:
            self._screen_view.show(view)

    # ------------------------------------------------------------- choosing a variant

    def choose(self, index: int) -> None:
        """Make variant `index` the one whose panels, edits and slow motion are shown."""
        if self.debugger is None or index == self.chosen or not 0 <= index < len(self.variants):
            return
        self.chosen = index
        self.selected = None
        self._enqueue(dbg.Choose(index))

    def action_cycle(self, step: int) -> None:
        if self.debugger is not None:
            self.choose((self.chosen + step) % len(self.variants))

    def action_show_variant(self) -> None:
        if isinstance(self.screen, ComparisonScreen):
            self.pop_screen()
            label = self.variants[self.chosen].label
            self.notify(f"variant {self.chosen + 1}: {label} · C: back to the comparison")

    def action_comparison(self) -> None:
        if self._screen_view is not None and self.screen is not self._screen_view:
            self.push_screen("comparison")

    # ------------------------------------------------------------- lockstep

    def on_history_panel_jump(self, message: Any) -> None:
        """A jump in one variant's history would break the lockstep: refused, said why."""
        message.prevent_default()  # not the app's handler, which would jump
        self.notify(
            "in a comparison, go back with u (every variant together), not by jumping in "
            "one variant's history",
            severity="warning",
        )

    def hyper_label(self, command: dbg.SetHyper) -> str:
        return f"set {command.key} of variant {self.chosen + 1}"

    def progressed(self, update: dbg.Progress | dbg.LockstepProgress, generation: int) -> None:
        """Every variant's counters while a lockstep `continue` runs (engine thread)."""
        if isinstance(update, dbg.LockstepProgress):
            self.post_message(self.CompareProgress(update.pulses, generation))

    def on_compare_app_compare_progress(self, message: CompareProgress) -> None:
        if message.generation != self._generation or self._screen_view is None:
            return
        chosen = message.pulses[self.chosen] if message.pulses else None
        if self.running is not None and chosen is not None:
            self.running.show(
                f"running {len(message.pulses)} variants: op {chosen.op_count} · "
                + " · ".join(f"{k + 1}: {fmt.num(p.loss, 4)}" for k, p in enumerate(message.pulses))
            )
        now = time.monotonic()
        if now - self._plotted_all < 1.0 or self.view is None:
            return
        self._plotted_all = now
        view = self.view
        if isinstance(view, CompareView):
            values = {f.name: getattr(view, f.name) for f in fields(view)}
            self._screen_view.show(CompareView(**{**values, "pulses": message.pulses}))

    # ------------------------------------------------------------- pictures

    def action_export_losses(self) -> None:
        self._enqueue(dbg.ExportLosses())


def _lockstep(comparison: Comparison) -> CompareDebugger:
    from optdbg.engine.debugger.facade import CompareDebugger

    return CompareDebugger(comparison)


def open_compare(
    variants: Sequence[Variant], words: Sequence[str], repeat: int, epochs: int | None
) -> int:
    """`optdbg compare` without --table/--json: the comparison view (like open_tui)."""
    import os
    import sys

    app = CompareApp(variants=variants, ops=words, repeat=repeat, epochs=epochs)
    app.run()
    code = app.return_code or 0
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
