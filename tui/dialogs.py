"""Modal dialogs: hyperparameters, breakpoints, and the overlay shown while running."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.events import Key
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from optdbg.engine import fmt

EDITABLE = (bool, int, float, tuple, list)
"""Hyperparameter values the dialog can edit (others, e.g. None or strings, are shown)."""


def parse_value(text: str, current: Any) -> Any:
    """The typed text as a value of the current value's kind (ValueError when it is not)."""
    text = text.strip()
    if isinstance(current, bool):
        if text.lower() in ("true", "1", "yes", "on"):
            return True
        if text.lower() in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"expected true or false, got {text!r}")
    if isinstance(current, tuple | list):
        parts = [p for p in text.strip("()[] ").replace(",", " ").split() if p]
        return type(current)(float(p) for p in parts)
    number = float(text)
    return int(number) if isinstance(current, int) and number.is_integer() else number


def shown(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ", ".join(fmt.num(v) if isinstance(v, int | float) else str(v) for v in value)
    return fmt.num(value) if isinstance(value, int | float) else str(value)


class HyperDialog(ModalScreen[dict[tuple[int, str], Any] | None]):
    """Edit the param groups' hyperparameters; returns {(group, key): new value}."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, groups: tuple[Mapping[str, Any], ...], only: str | None = None) -> None:
        super().__init__()
        self.groups = groups
        self.only = only

    def _fields(self) -> list[tuple[int, str, Any]]:
        return [
            (g, key, value)
            for g, group in enumerate(self.groups)
            for key, value in group.items()
            if isinstance(value, EDITABLE) and (self.only is None or key == self.only)
        ]

    def compose(self) -> ComposeResult:
        title = "Learning rate" if self.only == "lr" else "Hyperparameters"
        with Vertical(id="dialog"):
            yield Label(f"{title}: takes effect from the next step (undoable)", id="dialog-title")
            with VerticalScroll(id="dialog-fields"):
                for g, key, value in self._fields():
                    prefix = f"group {g} · " if len(self.groups) > 1 else ""
                    yield Label(f"{prefix}{key}")
                    yield Input(shown(value), id=f"hp-{g}-{key}", classes="hyper")
            yield Static(id="dialog-error")
            yield Button("Apply (enter)", variant="primary", id="apply")

    def on_mount(self) -> None:
        inputs = self.query(Input)
        if inputs:
            inputs.first().focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#apply")
    def apply(self) -> None:
        changes: dict[tuple[int, str], Any] = {}
        for g, key, value in self._fields():
            text = self.query_one(f"#hp-{g}-{key}", Input).value
            if text.strip() == shown(value):
                continue
            try:
                changes[(g, key)] = parse_value(text, value)
            except ValueError as e:
                message = Text(f"{key}: {e}", style="bold red")
                self.query_one("#dialog-error", Static).update(message)
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
            yield Input(self.condition, placeholder="e.g. loss < 8.01 or step >= 100", id="cond")
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
                self.query_one("#dialog-error", Static).update(Text(str(e), style="bold red"))
                return
        self.dismiss((text, self.query_one("#on-warning", Checkbox).value))


class RunningScreen(ModalScreen[None]):
    """Shown while `continue` runs: the panels keep updating behind it; any key pauses."""

    def compose(self) -> ComposeResult:
        yield Static("▶ running… press any key to pause", id="running")

    def on_key(self, event: Key) -> None:
        event.stop()
        event.prevent_default()
        self.dismiss()

    def on_click(self) -> None:
        self.dismiss()

    def show(self, text: str) -> None:
        self.query_one("#running", Static).update(Text(f"▶ {text}   ·   any key pauses"))


class DiagnosticsScreen(ModalScreen[None]):
    """Every pitfall found so far, grouped by code: what it means, where, and the fix."""

    BINDINGS = [Binding("escape,d,q", "dismiss", "Close")]

    def __init__(self, diagnoses: list[Any], ops: int) -> None:
        super().__init__()
        self.diagnoses = diagnoses
        self.ops = ops

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="diagnostics"):
            yield Static(self._text(), id="diagnostics-text")

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
