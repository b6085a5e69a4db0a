"""The panels of the main screen. Each receives detached data through a reactive."""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.text import Span, Text
from textual.app import ComposeResult
from textual.cache import LRUCache
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, RichLog, Static
from textual_plotext import PlotextPlot

from optdbg.engine import fmt
from optdbg.engine.events import OP_TABLE

from .text import clean, literal, printable

if TYPE_CHECKING:
    from optdbg.engine.events import Event
    from optdbg.engine.session import UpdateDetail
    from optdbg.engine.snapshot import ParamSnapshot, Snapshot, TensorView

OP_KEYS = {spec.name: spec.key for spec in OP_TABLE}
"""Each op's key, as the status line names the next one (from the engine's ops table)."""
_VAR = re.compile(r"\$([\w-]+)")


def themed(text: Text, variables: dict[str, str], one_line: bool = False) -> Text:
    """The Text as a widget shows it: `$warning`-style theme variables in its styles resolved
    (Rich has no themes) and control codes made visible (see `text.clean`)."""

    def sub(style: Any) -> Any:
        if isinstance(style, str) and "$" in style:
            return _VAR.sub(lambda m: variables.get(m.group(1), "default"), style)
        return style

    text.spans = [Span(sp.start, sp.end, sub(sp.style)) for sp in text.spans]
    text.style = sub(text.style)
    return clean(text, one_line)


MAX_LRS = 4
"""The status line lists this many learning rates at most (then how many groups)."""


def lr_text(value: object) -> str:
    """A learning rate as the status line shows it (a scenario may set any value)."""
    if isinstance(value, int | float):
        return fmt.num(value, 4)
    return printable(repr(value), one_line=True)[:20]


def _lrs(snap: Snapshot) -> str:
    """The param groups' learning rates in group order (one when they are all equal)."""
    lrs = [lr_text(g["lr"]) for g in snap.groups if "lr" in g]
    if not lrs:
        return "—"
    if len(set(lrs)) == 1:
        return lrs[0]
    shown = ", ".join(lrs[:MAX_LRS])
    return shown if len(lrs) <= MAX_LRS else f"{shown}, … ({len(lrs)} groups)"


class StatusBar(Static):
    """Scenario title, counters, loss, learning rate, the next op and the last event."""

    snapshot: reactive[Snapshot | None] = reactive(None, always_update=True)
    """The session's state after the last op."""
    last_event: reactive[Event | None] = reactive(None)
    """The last op performed, shown on the third line."""
    activity: reactive[str] = reactive("")
    """What is running now (loading, an op, queued ops); empty when idle."""

    def render(self) -> Text:
        snap = self.snapshot
        text = Text(no_wrap=True, overflow="ellipsis")
        if snap is None:
            text.append(" optdbg ", style="bold reverse")
            text.append(f"  {self.activity or 'no scenario loaded'}\n\n")
            return text
        text.append(f" {printable(snap.title, one_line=True)} ", style="bold reverse")
        if self.activity:
            text.append(f"  ⏳ {self.activity}", style="bold $text-warning")
        text.append("\n")
        parts = [
            ("op ", str(snap.op_count)),
            ("iter ", str(snap.iteration)),
            ("step ", str(snap.step_count)),
        ]
        if snap.has_data:
            per = f"/{snap.batches_per_epoch}" if snap.batches_per_epoch else ""
            parts += [("epoch ", str(snap.epoch)), ("batch ", f"{snap.batch}{per}")]
        loss = fmt.num(snap.loss) if snap.loss is not None else "—"
        parts += [("loss ", loss), ("lr ", _lrs(snap))]
        for i, (label, value) in enumerate(parts):
            text.append((" · " if i else " ") + label, style="dim")
            text.append(value, style="bold")
        text.append("  next: ", style="dim")
        text.append(f"{snap.next_op} ({OP_KEYS[snap.next_op]})", style="bold $text-accent")
        text.append("\n")
        text.append_text(self._last_line())
        return themed(text, self.app.theme_variables)

    def _last_line(self) -> Text:
        event = self.last_event
        if event is None:
            return Text(" press f to run forward, ? for help", style="dim")
        line = Text(f" #{event.index} {event.op}: ", style="dim")
        if nothing_done(event):
            assert event.error is not None
            line.append_text(literal(event.error.message, one_line=True))
        elif event.error:
            line.append_text(literal(event.summary, "not dim bold $text-error", one_line=True))
        elif event.warnings:  # not dim: a dimmed warning colour is 2:1 in the light theme
            line.append(f"⚠ {event.warnings[0].code}: ", style="not dim bold $text-warning")
            line.append_text(literal(event.warnings[0].message, one_line=True))
        else:
            line.append_text(literal(event.summary, one_line=True))
        return line


NAME_WIDTH = 22
"""Longer parameter names are shortened in the table (the details pane shows them whole)."""
REBUILD_CELLS = 60
"""More changed cells than this in one op: rebuild the table instead of cell by cell."""
PLOT_POINTS = 600
"""The loss plot draws at most about this many points (evenly spaced)."""
COLUMNS = ("name", "shape", "value", "grad", "acc", "Δ last step")
MIN_CELL = 10
"""The value, grad and Δ cells get at least this many characters, however narrow the table."""
SCROLLBAR = 2
"""Columns kept free for the table's vertical scrollbar (when it has many rows)."""


def _width(cell: Text | str) -> int:
    return cell.cell_len if isinstance(cell, Text) else len(cell)


def _short(name: str, width: int = NAME_WIDTH) -> str:
    if len(name) <= width:
        return name
    keep = (width - 1) // 2
    return f"{name[:keep]}…{name[-(width - 1 - keep) :]}"


def _share(total: int, natural: list[int], least: list[int]) -> tuple[int, int, int]:
    """Widths for columns that want `natural` within `total`: those that fit a fair share
    get what they want, the others split the rest (never below `least` nor MIN_CELL)."""
    widths = list(natural)
    wanting = sorted(range(len(natural)), key=lambda i: natural[i])
    left = total
    while wanting:
        fair = left // len(wanting)
        if natural[wanting[0]] > fair:
            for i in wanting:
                widths[i] = max(fair, least[i], MIN_CELL)
            break
        left -= natural[wanting.pop(0)]
    return widths[0], widths[1], widths[2]


class ParamsPanel(Vertical):
    """One row per optimizer parameter; the selected one's full values below."""

    BORDER_TITLE = "Parameters"

    snapshot: reactive[Snapshot | None] = reactive(None, always_update=True, repaint=False)
    """The session's state after the last op (a container's reactives repaint nothing: the
    table and the details below repaint themselves, the border alone costs a millisecond)."""
    details: reactive[str] = reactive("", repaint=False)
    """Full values of the selected parameter (fetched off the UI thread)."""

    class Selected(Message):
        """The user highlighted a parameter row."""

        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    class Follow(Message):
        """The user asked to see a parameter's leaf in the graph (enter on its row)."""

        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: dict[str, list[Text | str]] = {}
        """The cells on screen, by parameter name."""
        self._cell_chars = (0, 0, 0)
        """The widest value, grad and Δ cells that fit the table's width now."""
        self._widths: list[int] = []
        """The columns' widths (set, not measured by the table)."""

    def compose(self) -> ComposeResult:
        table: DataTable[Text | str] = DataTable(cursor_type="row", zebra_stripes=True)
        table.add_columns(*COLUMNS)  # the header before a scenario is loaded
        yield table
        with VerticalScroll(id="param-details"):
            yield Static(id="param-details-text")

    def watch_snapshot(self, snap: Snapshot | None) -> None:
        """Update only the cells that changed; rebuild in bulk when most of them did, or
        when a column's width changes (the widths are set, so a row never runs past the
        panel, and a stale measure never crops a cell).

        DataTable re-measures a whole column for each cell updated with `update_width`, so
        updating every cell of a big model each op grew with rows squared.
        """
        if snap is None:
            return
        table = self.query_one(DataTable)
        self._cell_chars = self._fit_cells(snap)
        rows = {p.name: self._row(p) for p in snap.params}
        widths = [
            max([len(label), *(_width(cells[i]) for cells in rows.values())])
            for i, label in enumerate(COLUMNS)
        ]
        changed = [
            (name, i, cell)
            for name, cells in rows.items()
            for i, cell in enumerate(cells)
            if self._shown.get(name, [None] * len(cells))[i] != cell
        ]
        if widths != self._widths or list(rows) != list(self._shown):
            self._rebuild(table, rows, widths)
        elif len(changed) > REBUILD_CELLS:
            self._rebuild(table, rows, None)
        else:
            columns = list(table.columns.values())
            for name, i, cell in changed:
                table.update_cell(name, columns[i].key, cell)
        self._shown = rows

    def on_resize(self) -> None:
        self.watch_snapshot(self.snapshot)

    def _fit_cells(self, snap: Snapshot) -> tuple[int, int, int]:
        """The characters the value, grad and Δ cells may take for a row to fit the panel's
        width: each column its natural width when all fit, else a fair share of what the
        name, shape and acc columns leave (a narrow column gives its rest to the others)."""
        if not self.size.width:
            return (40, 40, 40)
        name = max((len(_short(printable(p.name, one_line=True))) for p in snap.params), default=0)
        shape = max((len(fmt.shape(p.value.shape)) for p in snap.params), default=0)
        scrollbar = SCROLLBAR if len(snap.params) >= self.size.height // 2 else 0
        fixed = max(name, 4) + max(shape, 5) + 3 + 2 * len(COLUMNS) + scrollbar
        headers = [len(COLUMNS[2]), len(COLUMNS[3]), len(COLUMNS[5])]
        columns: list[list[TensorView | None]] = [
            [p.value for p in snap.params],
            [p.grad for p in snap.params],
            [p.last_update for p in snap.params],
        ]
        natural = [
            max([h, *(len(fmt.cell(v)) for v in values if v is not None)])
            for h, values in zip(headers, columns, strict=True)
        ]
        return _share(self.size.width - fixed, natural, headers)

    def _rebuild(
        self,
        table: DataTable[Text | str],
        rows: dict[str, list[Text | str]],
        widths: list[int] | None,
    ) -> None:
        cursor = table.cursor_row
        table.clear(columns=widths is not None)
        if widths is not None:
            self._widths = widths
            for label, width in zip(COLUMNS, widths, strict=True):
                table.add_column(label, width=width)
        for name, cells in rows.items():
            table.add_row(*cells, key=name)
        if 0 <= cursor < table.row_count:
            table.move_cursor(row=cursor)

    def _row(self, p: ParamSnapshot) -> list[Text | str]:
        """The cells as Text: a DataTable parses str cells as markup (`[inf, …]` vanished)."""
        variables = self.app.theme_variables
        return [themed(c, variables, one_line=True) for c in self._cells(p)]

    def _cells(self, p: ParamSnapshot) -> list[Text]:
        acc = Text(str(p.accumulated) if p.grad is not None else "–")
        if p.accumulated > 1:
            acc = Text(f"{p.accumulated}×⚠", style="bold $text-warning reverse")
        values, grads, deltas = self._cell_chars
        grad = Text("None", style="dim italic") if p.grad is None else Text(fmt.cell(p.grad, grads))
        delta = "–" if p.last_update is None else fmt.cell(p.last_update, deltas)
        name = Text(_short(printable(p.name, one_line=True)))
        value = Text(fmt.cell(p.value, values))
        dim = "dim" if p.last_update is None else ""
        return [name, Text(fmt.shape(p.value.shape)), value, grad, acc, Text(delta, style=dim)]

    def watch_details(self, text: str) -> None:
        self.query_one("#param-details-text", Static).update(literal(text))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.post_message(self.Selected(str(event.row_key.value)))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.post_message(self.Follow(str(event.row_key.value)))


class UpdatePanel(Static):
    """The last step's update rule with numbers, for the selected parameter."""

    BORDER_TITLE = "Update rule"

    lines: reactive[tuple[str, ...]] = reactive(())
    """The rule's lines (from engine.rules), or a hint when there is no step yet."""

    def render(self) -> Text:
        hint = "No step yet: press s after a backward to see the rule."
        return literal("\n".join(self.lines) or hint)


def describe_update(
    detail: UpdateDetail | None, name: str | None, steps: int = 0
) -> tuple[str, ...]:
    """The update panel's lines: the last step's rule for `name`, or why there is none
    (`steps`: how many steps the loop has taken; the last one may have skipped `name`)."""
    from optdbg.engine.rules import describe

    if detail is not None:
        return tuple(describe(detail))
    if steps and name:
        return (
            f"The last step (step {steps}) did not move {name}: its .grad was None then, "
            "nothing for the update to apply. Its rule shows again after a step that moves it.",
        )
    return ()


Y_TICKS = 5
"""The loss plot's y axis has at most this many labelled ticks."""


def y_ticks(low: float, high: float, log: bool) -> tuple[list[float], list[str]]:
    """The loss plot's y ticks and their labels, short at any magnitude (plotext's own
    labels grow to 40 digits when the loss explodes): decades on a log scale (`1e40`),
    else evenly spaced values in engineering notation, with the digits that tell them apart.
    """
    if log:
        first, last = math.ceil(math.log10(low)), math.floor(math.log10(high))
        every = max(1, math.ceil((last - first + 1) / Y_TICKS))
        decades = list(range(first, last + 1, every)) or [first]
        labels = [fmt.eng(10.0**k) if -3 <= k <= 3 else f"1e{k}" for k in decades]
        return [10.0**k for k in decades], labels
    if low == high:
        return [low], [fmt.eng(low)]
    ticks = [low + (high - low) * i / (Y_TICKS - 1) for i in range(Y_TICKS)]
    for digits in range(3, 9):
        labels = [fmt.eng(t, digits) for t in ticks]
        if len(set(labels)) == len(labels):
            break
    return ticks, labels


class LossPanel(PlotextPlot):
    """The loss history as a plot; after undo, the undone losses dimmed and a marker."""

    BORDER_TITLE = "Loss"

    history: reactive[tuple[tuple[float, ...], tuple[float, ...]]] = reactive(((), ()))
    """(losses up to the current point, losses of undone forwards that redo would replay)."""
    evals: reactive[tuple[tuple[int, float], ...]] = reactive(())
    """The evaluations: (training losses before it, evaluation loss), plotted beside."""

    def watch_evals(self, _evals: tuple[tuple[int, float], ...]) -> None:
        self.watch_history(self.history)

    def watch_history(self, history: tuple[tuple[float, ...], tuple[float, ...]]) -> None:
        past, future = history
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        values = past + future
        stride = max(1, len(values) // PLOT_POINTS)  # plotting every point grew with the run
        finite = [(i + 1, v) for i, v in enumerate(values) if math.isfinite(v) and i % stride == 0]
        if values and math.isfinite(values[-1]) and (len(values) - 1) % stride:
            finite.append((len(values), values[-1]))  # always draw the latest point
        shown = [(max(x, 1), y) for x, y in self.evals if math.isfinite(y)]
        if finite:
            ys = [v for _, v in finite]
            log = min(ys) > 0 and max(ys) / min(ys) > 1e3
            if log:
                plt.yscale("log")
            everything = ys + [y for _, y in shown if y > 0 or not log]
            plt.yticks(*y_ticks(min(everything), max(everything), log))
            done = [(x, y) for x, y in finite if x <= len(past)]
            undone = [(x, y) for x, y in finite if x > len(past)]
            for points, color in ((done, "cyan"), (undone, "gray")):
                if points:
                    xs, vs = zip(*points, strict=True)
                    plt.plot(list(xs), list(vs), marker="braille", color=color)
            if future:
                plt.vline(len(past), "orange")
        if shown:
            xs, vs = zip(*shown, strict=True)
            plt.plot(list(xs), list(vs), marker="dot", color="magenta", label="eval")
        last = fmt.num(past[-1]) if past else "—"
        bad = sum(1 for v in values if not math.isfinite(v))
        title = f"loss {last}" + (f"  ({bad} non-finite not drawn)" if bad else "")
        if self.evals:
            title += f"  eval {fmt.num(self.evals[-1][1])}"
        plt.title(title + (f"  (undone: {len(future)})" if future else ""))
        self.refresh()


class LogPanel(RichLog):
    """Every op with its index and result; warnings and errors stand out."""

    BORDER_TITLE = "Log"

    def add_events(self, events: list[Event]) -> None:
        """The ops' lines, then one scroll to the end, at once: RichLog scrolls after the next
        frame for each line written, which cost a second frame per op (the log and its
        scrollbar drawn again). Before the log knows its size, RichLog keeps the writes for
        later, each with its own scroll."""
        sized = getattr(self, "_size_known", False)
        for event in events:
            text = themed(event_text(event), self.app.theme_variables)
            self.write(text, scroll_end=None if not sized else False)
        if events and sized and self.auto_scroll:
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    def on_print(self, event: Any) -> None:
        """What the scenario prints (Textual's print capture)."""
        text = event.text.rstrip("\n")
        if text.strip():
            self.printed(text)

    def printed(self, text: str) -> None:
        """A line the scenario or script printed: shown as it is, neither markup nor
        control codes (an escape sequence would reach the terminal)."""
        self.write(literal(text, style="italic"))

    def note(self, message: str, style: str = "dim") -> None:
        self.write(literal(message, style))


def nothing_done(event: Event) -> bool:
    """An undo or redo with nothing to go back to or replay: a note, not a refused op."""
    error = event.error
    return event.op in ("undo", "redo") and error is not None and error.type == "UsageError"


def event_text(event: Event) -> Text:
    text = Text()
    text.append(f"#{event.index:<4} ", style="dim")
    text.append(f"{event.op:<10}", style="bold")
    if nothing_done(event):
        assert event.error is not None
        text.append_text(literal(event.error.message, "dim"))
    elif event.error:
        text.append(f"✗ {event.summary}\n", style="bold $text-error")
        text.append(f"      {event.error.explanation}", style="$text-error")
    else:
        text.append(event.summary)
    for w in event.warnings:
        text.append("\n")
        text.append(f"      ⚠ {w.code} ", style="bold $text-warning reverse")
        text.append(f" {w.message}", style="$text-warning")
    for failure in event.observer_errors:
        text.append("\n")
        text.append(f"      ✗ {failure}", style="italic $text-error")
    return text


TOAST_FAILURES = 3
"""Observer failures listed in one toast (the log has every one)."""


def failures_toast(events: list[Event]) -> str | None:
    """One toast's text for what the observers of these ops failed to do (None: nothing)."""
    failures = list(dict.fromkeys(f for e in events for f in e.observer_errors))
    if not failures:
        return None
    more = len(failures) - TOAST_FAILURES
    shown = "\n".join(failures[:TOAST_FAILURES])
    return shown + (f"\n(+{more} more in the log)" if more > 0 else "")


_RowLines = tuple[list[Any], list[Any]]
"""What DataTable draws for one line of a row: the fixed cells' segments and the others'."""


class RowCachedTable(DataTable[Text | str]):
    """A row-cursor DataTable that draws a row again only when the row changed.

    DataTable forgets every drawn row whenever any cell changes, a row is added or the cursor
    moves, so the history table (one op adds rows and moves the marker) drew every visible row
    twice per op: about 15 ms of each MLP key. Here a row's drawing is kept with the cell
    objects it was drawn from, and used again while the row holds those very objects (cells
    are never changed in place: an update puts a new one) and nothing else it depends on has
    changed: its position (the mouse's row meta), the line, the base style, whether the cursor
    or the mouse is on it, the focus, the widths, and the styles (a theme or CSS change
    forgets everything)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._drawn: LRUCache[tuple[Any, ...], tuple[tuple[object, ...], _RowLines]] = LRUCache(
            4096
        )

    def notify_style_update(self) -> None:
        self._drawn.clear()
        super().notify_style_update()

    def _row_cells(self, row_key: Any) -> tuple[object, ...]:
        if row_key is self._header_row_key:
            return tuple(column.label for column in self.ordered_columns)
        row = self.rows.get(row_key)
        return (row.label if row is not None else None, *self._data.get(row_key, {}).values())

    def _render_line_in_row(
        self,
        row_key: Any,
        line_no: int,
        base_style: Any,
        cursor_location: Any,
        hover_location: Any,
    ) -> _RowLines:
        if self.cursor_type != "row" or self.fixed_columns:
            return super()._render_line_in_row(
                row_key, line_no, base_style, cursor_location, hover_location
            )
        index = self._row_locations.get(row_key) if row_key in self._row_locations else -1
        key = (
            row_key,
            index,
            line_no,
            base_style,
            cursor_location.row == index,
            hover_location.row == index,
            self.show_cursor,
            self._show_hover_cursor,
            self._pseudo_class_state,
            self.size.width,
            self.zebra_stripes,
            self.show_row_labels,
            self._row_label_column_width,
            tuple(column.get_render_width(self) for column in self.ordered_columns),
        )
        cells = self._row_cells(row_key)
        hit = self._drawn.get(key)
        same = hit is not None and len(hit[0]) == len(cells)
        if hit is not None and same and all(a is b for a, b in zip(hit[0], cells, strict=True)):
            return hit[1]
        lines = super()._render_line_in_row(
            row_key, line_no, base_style, cursor_location, hover_location
        )
        self._drawn[key] = (cells, lines)
        return lines


def _measured(cell: Text | str) -> int:
    """A cell's width as DataTable measures it (its widest line; a str is markup there,
    but the history's cells are all Text)."""
    plain = cell.plain if isinstance(cell, Text) else cell
    return max((cell_len(line) for line in plain.splitlines()), default=0)


class HistoryPanel(Vertical):
    """The timeline of ops: undone ones dimmed, the current point marked; enter jumps."""

    BORDER_TITLE = "History"

    timeline: reactive[tuple[Any, ...]] = reactive((), always_update=True, repaint=False)
    """The session's timeline entries (engine.history.TimelineEntry), undone ones included
    (no repaint of the panel itself: its table repaints where it changed)."""

    class Jump(Message):
        """The user chose a point of the timeline: the state right after op `index`."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shown: dict[str, tuple[Any, bool]] = {}
        """Each row's key -> (its entry, whether it was the current one), as on screen."""
        self._theme = ""
        self._cell_widths: dict[str, list[int]] = {}
        """Each row's cells' widths, as the table measures them (see `_width_changes`)."""
        self._column_widths: list[Counter[int]] = []
        """For each column, how many of its cells have each width."""

    def compose(self) -> ComposeResult:
        table = RowCachedTable(cursor_type="row", id="history-table")
        table.add_columns("", "#", "op", "result", "loss")
        self._column_widths = [Counter() for _ in table.columns]
        yield table

    def watch_timeline(self, entries: tuple[Any, ...]) -> None:
        """Rows are added, removed and rewritten only where the timeline changed (one op
        adds a row and moves the marker: rebuilding 400 rows took most of a frame)."""
        table = self.query_one(DataTable)
        current = max((e.index for e in entries if not e.undone), default=-1)
        wanted = {"-1": (None, current == -1)} | {
            str(e.index): (e, e.index == current) for e in entries
        }
        shown = self._shown
        new = [k for k in wanted if k not in shown]
        last = max((int(k) for k in shown), default=-2)
        if any(int(k) < last for k in new) or self._theme != self.app.theme:
            self._theme = self.app.theme  # rows go in order, colours follow the theme: rebuild
            table.clear()
            shown.clear()
            self._cell_widths.clear()
            self._column_widths = [Counter() for _ in table.columns]
            new = list(wanted)
        removed = [k for k in shown if k not in wanted]
        rewritten = {
            key: self._cells(*row)
            for key, row in wanted.items()
            if key in shown and shown[key] != row
        }
        added = {key: self._cells(*wanted[key]) for key in new}
        resized = self._width_changes(table, removed, rewritten | added)
        for key in removed:
            table.remove_row(key)
            del shown[key]
        columns = list(table.columns)
        for key, cells in rewritten.items():
            for i, (column, cell) in enumerate(zip(columns, cells, strict=True)):
                table.update_cell(key, column, cell, update_width=resized[i])
            shown[key] = wanted[key]
        for key, cells in added.items():
            table.add_row(*cells, key=key)
            shown[key] = wanted[key]
        if entries and str(current) in shown:
            table.move_cursor(row=table.get_row_index(str(current)), scroll=True)

    def _width_changes(
        self,
        table: DataTable[Text | str],
        removed: list[str],
        cells: dict[str, list[Text | str]],
    ) -> list[bool]:
        """For each column, whether its width may change once these rows are removed and
        these cells put in: only then is a rewritten cell updated with `update_width`.

        DataTable measures every cell of a column again for each updated cell narrower than
        the column (moving the marker rewrites five), which grew with the history: about
        20 ms of each MLP key after 100 iterations. A column updated with `update_width`
        ends as wide as its widest cell or its label; here the widths of all cells are
        counted, so a column already that wide is updated without it, to the same effect."""
        counts = self._column_widths
        for key in removed:
            for count, width in zip(counts, self._cell_widths.pop(key), strict=True):
                count[width] -= 1
        for key, row in cells.items():
            widths = [_measured(cell) for cell in row]
            for count, width in zip(counts, self._cell_widths.get(key, ()), strict=False):
                count[width] -= 1
            for count, width in zip(counts, widths, strict=True):
                count[width] += 1
            self._cell_widths[key] = widths
        return [
            column.content_width
            != max(
                max((w for w, n in count.items() if n > 0), default=0),
                _measured(column.label),
            )
            for column, count in zip(table.columns.values(), counts, strict=True)
        ]

    def _cells(self, entry: Any, is_current: bool) -> list[Text | str]:
        if entry is None:
            return ["▶" if is_current else "", "start", "", "initial state", ""]
        style = "dim strike" if entry.undone else ("bold" if is_current else "")
        cells = [
            "▶" if is_current else ("·" if entry.checkpoint else ""),
            str(entry.index),
            entry.op,
            entry.summary if entry.ok else f"✗ {entry.summary}",
            fmt.num(entry.loss) if entry.loss is not None else "",
        ]
        variables = self.app.theme_variables
        return [themed(Text(c, style=style), variables, one_line=True) for c in cells]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.post_message(self.Jump(int(event.row_key.value)))
