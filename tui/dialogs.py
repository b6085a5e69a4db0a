"""Modal dialogs: hyperparameters, breakpoints, diagnostics."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.events import Click
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Button, Checkbox, Input, Label, Static

from optdbg.engine import fmt
from optdbg.engine.hyper import parse_value

from .text import clean, literal, printable, typed

EDITABLE = (bool, int, float, tuple, list)
"""Hyperparameter values the dialog can edit (others, e.g. None or strings, are shown)."""


class FieldList(ScrollView, can_focus=False):
    """The hyperparameters, one line each, drawn only where on screen (Textual's Line API):
    2,000 param groups cost what 20 do. The highlighted line is the one being edited."""

    COMPONENT_CLASSES = {"field-list--cursor"}
    DEFAULT_CSS = """
    FieldList > .field-list--cursor { background: $accent 40%; text-style: bold; }
    """

    cursor: reactive[int] = reactive(0)

    class Moved(Message):
        """The user moved to another line (a click)."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, count: int, line: Callable[[int], Text], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.count = count
        self.line = line
        """The text of line `index`, asked for only when the line is drawn."""
        self.virtual_size = Size(0, count)

    def refresh_line(self, index: int) -> None:
        self.refresh(Region(0, index - self.scroll_offset.y, self.size.width, 1))

    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh_line(old)
        self.refresh_line(new)
        self.scroll_to_region(Region(0, new, 1, 1), animate=False, immediate=True)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = y + scroll_y
        width = self.size.width
        if index >= self.count:
            return Strip.blank(width, self.rich_style)
        style = self.rich_style
        if index == self.cursor:
            style += self.get_component_rich_style("field-list--cursor")
        line = self.line(index)
        line.stylize_before(style)
        segments = line.render(self.app.console)
        strip = Strip(segments).crop(scroll_x, scroll_x + width)
        return strip.extend_cell_length(width, style).simplify()

    def on_click(self, event: Click) -> None:
        index = event.y + self.scroll_offset.y
        if 0 <= index < self.count:
            self.post_message(self.Moved(index))


class TextInput(Input):
    """An input whose value never holds a control character: what is pasted is kept, less
    the ESC sequences, NULs and bidi overrides the terminal would act on."""

    def validate_value(self, value: str) -> str:
        return typed(value)


class HyperDialog(ModalScreen[dict[tuple[int, str], Any] | None]):
    """Edit the param groups' hyperparameters; returns {(group, key): new value}.

    One line per editable value (see FieldList) and one input for the highlighted line.
    ↑/↓ (page up/down) move between lines while typing; enter applies every change made.
    """

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Cancel"),
        Binding("up", "move(-1)", "previous", show=False),
        Binding("down", "move(1)", "next", show=False),
        Binding("pageup", "move(-10)", show=False),
        Binding("pagedown", "move(10)", show=False),
        Binding("ctrl+home", "move(-1_000_000_000)", show=False),
        Binding("ctrl+end", "move(1_000_000_000)", show=False),
    ]

    def __init__(self, groups: tuple[Mapping[str, Any], ...], only: str | None = None) -> None:
        super().__init__()
        self.groups = groups
        self.only = only
        self.fields = [
            (g, key, value)
            for g, group in enumerate(groups)
            for key, value in group.items()
            if isinstance(value, EDITABLE) and (only is None or key == only)
        ]
        self.typed: dict[int, str] = {}
        """What the user typed, by field index (fields not edited are absent)."""
        self.current = 0
        widest = max((len(self._label_of(i)) for i in range(len(self.fields))), default=0)
        self._name_width = min(40, widest)

    def compose(self) -> ComposeResult:
        title = "Learning rate" if self.only == "lr" else "Hyperparameters"
        with Vertical(id="dialog"):
            yield Label(f"{title}: takes effect from the next step (undoable)", id="dialog-title")
            yield FieldList(len(self.fields), self._line, id="hp-list")
            yield Label(id="hp-field")
            yield TextInput(id="hp-value")
            yield Static(id="dialog-error")
            yield Button("Apply (enter)", variant="primary", id="apply")

    def on_mount(self) -> None:
        if not self.fields:
            what = f"no {self.only} to edit" if self.only else "no editable hyperparameter"
            self.query_one("#hp-field", Label).update(literal(what, "bold"))
            return
        self.query_one(FieldList).display = len(self.fields) > 1
        self._show(0)
        self.query_one("#hp-value", Input).focus()

    def _label_of(self, index: int) -> str:
        g, key, _ = self.fields[index]
        name = printable(key, one_line=True)
        return f"group {g} · {name}" if len(self.groups) > 1 else name

    def _line(self, index: int) -> Text:
        old = fmt.editable(self.fields[index][2])
        typed = self.typed.get(index)
        name = self._label_of(index)
        if len(name) > self._name_width:
            name = name[: self._name_width - 1] + "…"
        line = Text(f" {name:<{self._name_width}}  {old}")
        if typed is not None and typed.strip() != old:
            line.append_text(literal(f" → {typed}", "bold", one_line=True))
        return line

    def _show(self, index: int) -> None:
        """Edit field `index` in the input (what was typed for it, else its value)."""
        self.current = index
        self.query_one(FieldList).cursor = index
        self.query_one("#hp-field", Label).update(literal(self._label_of(index), "bold"))
        text = self.typed.get(index, fmt.editable(self.fields[index][2]))
        field = self.query_one("#hp-value", Input)
        with field.prevent(Input.Changed):
            field.value = text
        field.cursor_position = len(text)

    def action_move(self, delta: int) -> None:
        if self.fields:
            self._show(max(0, min(len(self.fields) - 1, self.current + delta)))

    def on_field_list_moved(self, message: FieldList.Moved) -> None:
        self._show(message.index)
        self.query_one("#hp-value", Input).focus()

    @on(Input.Changed, "#hp-value")
    def changed(self, event: Input.Changed) -> None:
        if self.fields:
            self.typed[self.current] = event.value
            self.query_one(FieldList).refresh_line(self.current)

    @on(Input.Submitted)
    @on(Button.Pressed, "#apply")
    def apply(self) -> None:
        changes: dict[tuple[int, str], Any] = {}
        for index, text in sorted(self.typed.items()):
            g, key, value = self.fields[index]
            if text.strip() == fmt.editable(value):
                continue
            try:
                changes[(g, key)] = parse_value(text, value)
            except (ValueError, OverflowError) as e:
                error = literal(f"{self._label_of(index)}: {e}", "bold red")
                self.query_one("#dialog-error", Static).update(error)
                self._show(index)
                return
        self.dismiss(changes)


class BreakpointDialog(ModalScreen[tuple[str, bool] | None]):
    """Where `continue` stops: a condition over loss, step, epoch, grad_norm, warnings."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, condition: str, on_warning: bool, names: Mapping[str, str]) -> None:
        super().__init__()
        self.condition = condition
        self.on_warning = on_warning
        self.names = names

    def compose(self) -> ComposeResult:
        help_text = "\n".join(f"  {name}: {what}" for name, what in self.names.items())
        with Vertical(id="dialog"):
            title = "Breakpoint: continue (c) stops right after the op where…"
            yield Label(title, id="dialog-title")
            yield TextInput(
                self.condition, placeholder="e.g. loss < 8.01 or step >= 100", id="cond"
            )
            yield Checkbox("…any warning fires", self.on_warning, id="on-warning")
            yield Static(Text(help_text, style="dim"), id="dialog-help")
            yield Static(id="dialog-error")
            yield Button("Set (enter)", variant="primary", id="apply")

    @on(Input.Submitted)
    @on(Button.Pressed, "#apply")
    def apply(self) -> None:
        from optdbg.engine.breakpoints import ConditionError, parse_condition

        text = self.query_one("#cond", Input).value.strip()
        if text:
            try:
                parse_condition(text)
            except ConditionError as e:
                self.query_one("#dialog-error", Static).update(literal(e, "bold red"))
                return
        self.dismiss((text, self.query_one("#on-warning", Checkbox).value))


class DiagnosticsScreen(ModalScreen[None]):
    """Every pitfall found so far, grouped by code: what it means, where, and the fix."""

    BINDINGS = [Binding("escape,d,q", "dismiss", "Close")]

    def __init__(self, diagnoses: list[Any], ops: int) -> None:
        super().__init__()
        self.diagnoses = diagnoses
        self.ops = ops

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="diagnostics"):
            yield Static(clean(self._text()), id="diagnostics-text")

    def _text(self) -> Text:
        text = Text()
        if not self.diagnoses:
            text.append(f"No pitfall found in {self.ops} ops.\n", style="bold")
            text.append("Warnings appear here as soon as a detector fires.", style="dim")
            return text
        total = sum(d.count for d in self.diagnoses)
        text.append(
            f"{fmt.plural(len(self.diagnoses), 'kind')} of pitfall, "
            f"{fmt.plural(total, 'warning')} in {fmt.plural(self.ops, 'op')}\n\n",
            style="bold",
        )
        for d in self.diagnoses:
            text.append(f" {d.code} ", style="bold reverse")
            ops = ", ".join(f"#{i}" for i, _ in d.occurrences[:6])
            more = f" and {d.count - 6} more" if d.count > 6 else ""
            text.append(f"  ×{d.count} at op {ops}{more}")
            if d.params:
                text.append(f"  ({', '.join(d.params)})", style="dim")
            text.append("\n")
            if d.meaning:
                text.append(f"  what: {d.meaning}\n")
            text.append(f"  last: {d.occurrences[-1][1].message}\n", style="italic")
            if d.fix:
                text.append(f"  fix:  {d.fix}\n", style="bold")
            text.append("\n")
        hint = "escape to close · silence a code with optdbg_config in the scenario"
        text.append(hint, style="dim")
        return text
