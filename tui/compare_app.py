"""The comparison view: several variants in lockstep, one row each, their loss curves
overlaid; the selected variant's usual panels one key (enter / C) away.

CompareApp is the debugger app with a Comparison behind it: every op, undo, redo and
continue goes to all variants (on the one engine thread, each variant with its own RNG
state); hyperparameter edits, slow motion and the panels are the selected variant's.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Static
from textual_plotext import PlotextPlot

from optdbg.engine import fmt
from optdbg.engine.plots import curve_range

from .app import Continued, Note, OptDbgApp, View
from .dialogs import HyperDialog, RunningScreen
from .keys import KeyFooter
from .landscape_view import COLORS, PLOT_COLORS

if TYPE_CHECKING:
    from optdbg.engine.compare import Comparison, Pulse, Variant
    from optdbg.engine.session import Session

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


@dataclass(frozen=True)
class CompareView(View):
    """The selected variant's view, plus every variant's counters and loss curve."""

    pulses: tuple[Pulse, ...] = ()
    chosen: int = 0


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
                    self.update_cell_at((k, c), cell, update_width=True)
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
        self.comparison = comparison
        self.variants = list(comparison.variants if comparison else variants)
        for session in comparison.sessions[1:] if comparison else ():
            session.capture_graph = False
        self.chosen = 0
        self._start = (list(ops), repeat, epochs)
        self._screen_view: ComparisonScreen | None = None
        first = comparison.sessions[0] if comparison else None
        super().__init__(first, scenario=None if first else self.variants[0].spec)
        self._plotted_all = 0.0

    def on_mount(self) -> None:
        super().on_mount()
        self._screen_view = ComparisonScreen()
        self.install_screen(self._screen_view, name="comparison")  # kept while hidden
        self.push_screen("comparison")

    # ------------------------------------------------------------- loading

    def open_session(self, spec: Any, overrides: dict[str, Any]) -> Session:
        """Load every variant (engine thread) and run the ops given on the command line."""
        from optdbg.engine.compare import Comparison

        comparison = Comparison.open(self.variants)
        words, repeat, epochs = self._start
        for _ in range(epochs or 0):
            for k in range(len(comparison.sessions)):
                comparison.run_epoch(k)
        for _ in range(repeat if words else 0):
            for word in words:
                comparison.perform(word)
        for session in comparison.sessions:
            session.capture_graph = False  # only the chosen variant's graph is shown
        self.comparison = comparison
        self.chosen = 0
        return comparison.sessions[0]

    def on_opt_dbg_app_load_failed(self, message: OptDbgApp.LoadFailed) -> None:
        """A variant that cannot load: its message is on the main screen, shown at once
        (Textual runs the app's own handler after this one)."""
        if isinstance(self.screen, ComparisonScreen):
            self.pop_screen()

    def _capture(self, session: Session, selected: str | None) -> View:
        view = super()._capture(session, selected)
        pulses = self.comparison.pulses() if self.comparison is not None else ()
        fields = {f: getattr(view, f) for f in view.__dataclass_fields__}
        return CompareView(**fields, pulses=pulses, chosen=self.chosen)

    def _apply(self, view: View) -> None:
        super()._apply(view)
        if isinstance(view, CompareView) and self._screen_view is not None:
            self._screen_view.show(view)

    # ------------------------------------------------------------- choosing a variant

    def choose(self, index: int) -> None:
        """Make variant `index` the one whose panels, edits and slow motion are shown."""
        if self.comparison is None or index == self.chosen:
            return
        if not 0 <= index < len(self.comparison.sessions):
            return
        self.chosen = index
        self.session = self.comparison.sessions[index]
        self.selected = None

        def watch(chosen: Session) -> None:
            """Graph capture costs as much as the op on big models: the chosen one only."""
            for session in self._all().sessions:
                session.capture_graph = session is chosen

        self._enqueue("select", watch)

    def action_cycle(self, step: int) -> None:
        if self.comparison is not None:
            self.choose((self.chosen + step) % len(self.comparison.sessions))

    def action_show_variant(self) -> None:
        if isinstance(self.screen, ComparisonScreen):
            self.pop_screen()
            label = self.variants[self.chosen].label
            self.notify(f"variant {self.chosen + 1}: {label} · C: back to the comparison")

    def action_comparison(self) -> None:
        if self._screen_view is not None and self.screen is not self._screen_view:
            self.push_screen("comparison")

    # ------------------------------------------------------------- lockstep ops

    def _mine(self, per_variant: list[Any]) -> Any:
        return per_variant[self.chosen]

    def action_op(self, op: str) -> None:
        self._enqueue(op, lambda s: self._mine(self._all().perform(op)))

    def action_undo(self) -> None:
        self._enqueue("undo", lambda s: [self._mine(self._all().undo())])

    def action_redo(self) -> None:
        self._enqueue("redo", lambda s: [self._mine(self._all().redo())])

    def _all(self) -> Comparison:
        assert self.comparison is not None
        return self.comparison

    def on_history_panel_jump(self, message: Any) -> None:
        """A jump in one variant's history would break the lockstep: refused, said why."""
        message.prevent_default()  # not the app's handler, which would jump
        self.notify(
            "in a comparison, go back with u (every variant together), not by jumping in "
            "one variant's history",
            severity="warning",
        )

    def action_slow_backward(self) -> None:
        """Backward in every variant; the selected one recorded node by node."""
        if self._replay is not None:
            self._advance_replay()
            return
        from .app import SlowMotion

        def job(s: Session) -> Any:
            comparison = self._all()
            outcome = None
            for k in range(len(comparison.sessions)):
                with comparison.running(k) as session:
                    if k == self.chosen:
                        outcome = SlowMotion(*session.backward_steps())
                    else:
                        session.backward()
            return outcome

        self._enqueue("backward (slow motion)", job)

    def _edit_hyper(self, only: str | None) -> None:
        if self.view is None:
            return
        chosen = self.chosen

        def apply(changes: dict[tuple[int, str], Any] | None) -> None:
            for (group, key), value in (changes or {}).items():
                self._enqueue(
                    f"set {key} of variant {chosen + 1}",
                    lambda s, g=group, k=key, v=value: [self._all().set_hyper(chosen, g, k, v)],
                )

        self.push_screen(HyperDialog(self.view.snapshot.groups, only), apply)

    def action_continue(self) -> None:
        """Every variant one op per round, until a breakpoint holds in any, a key, or an
        error; the table and the curves update live."""
        from optdbg.engine.breakpoints import AnyOf, RunResult, WarningFires, parse_condition

        def conditions() -> Any:
            parts = [WarningFires()] if self._break_on_warning else []
            if self._break_condition:
                parts.append(parse_condition(self._break_condition))
            return AnyOf(*parts) if parts else None

        stop = threading.Event()
        self._stop = stop
        generation = self._generation

        def job(s: Session) -> Continued:
            comparison = self._all()

            def progress() -> None:
                self.post_message(self.CompareProgress(comparison.pulses(), generation))

            saved = [x.capture_graph for x in comparison.sessions]
            for x in comparison.sessions:
                x.capture_graph = False
            try:
                conds = [conditions() for _ in comparison.sessions]
                run = comparison.run_until(conds, None, stop, progress, 0.5)
            finally:
                for x, capture in zip(comparison.sessions, saved, strict=True):
                    x.capture_graph = capture
            mine = run.events[self.chosen]
            done = sum(1 for e in mine if e.op == "zero_grad" and e.ok)
            index = mine[-1].index if mine else None
            return Continued(RunResult(run.reason, run.message, mine, done, index))

        self._enqueue("continue", job)
        self.push_screen(RunningScreen(), lambda _: stop.set())

    def on_compare_app_compare_progress(self, message: CompareProgress) -> None:
        if message.generation != self._generation or self._screen_view is None:
            return
        chosen = message.pulses[self.chosen] if message.pulses else None
        if isinstance(self.screen, RunningScreen) and chosen is not None:
            self.screen.show(
                f"running {len(message.pulses)} variants: op {chosen.op_count} · "
                + " · ".join(f"{k + 1}: {fmt.num(p.loss, 4)}" for k, p in enumerate(message.pulses))
            )
        now = time.monotonic()
        if now - self._plotted_all < 1.0 or self.view is None:
            return
        self._plotted_all = now
        view = self.view
        if isinstance(view, CompareView):
            fields = {f: getattr(view, f) for f in view.__dataclass_fields__}
            fields["pulses"] = message.pulses
            self._screen_view.show(CompareView(**fields))

    # ------------------------------------------------------------- pictures

    def landscape_runs(self, session: Session) -> tuple[list[Session], list[str]]:
        comparison = self._all()
        return list(comparison.sessions), comparison.labels

    def action_export_losses(self) -> None:
        def job(s: Session) -> Note:
            from optdbg.engine.export import unique_path
            from optdbg.engine.plots import PlotError, write_loss_curves

            comparison = self._all()
            curves = [x.loss_history for x in comparison.sessions]
            path = unique_path(f"{s.scenario.name}-losses-op{len(s.events)}.png")
            try:
                return Note(write_loss_curves(path, comparison.labels, curves, s.scenario.title))
            except PlotError as e:
                return Note(f"export failed: {e}", "error")

        self._enqueue("export the loss curves", job)


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
