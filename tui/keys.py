"""The one table of the TUI's keys: the app's bindings, the footer and the help screen come
from it (and a test checks the README's table against it).

Order is the footer's order, most needed first: the op keys and `q quit` fit an 80-column
terminal; the footer shows as many of the rest as fit. A key whose action does not apply now
is hidden (the app's `check_action`), so the ones that apply move up. The op keys (their
letters, actions and footer words) come from the engine's ops table (`engine.events.OP_TABLE`);
only their help and tooltips, in the TUI's words, are written here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer

from optdbg.engine.events import OP_TABLE


@dataclass(frozen=True)
class Key:
    keys: str
    """The Textual key name, shown in the footer."""
    action: str
    footer: str
    """The footer's word (short: the footer fits 80 columns)."""
    help: str
    """What the key does, for the help screen (markdown)."""
    shown: str = ""
    """How the help screen and README write the key (default: the keys in backticks)."""
    what: str = ""
    """The help screen's name of the op or action (default: the footer's word)."""
    in_footer: bool = True
    priority: bool = False
    """Before any widget's bindings (arrows, which the tree and tables also bind)."""
    tooltip: str = ""
    also: str = ""
    """Another key for the same action, not in the footer (`left` for undo)."""
    also_priority: bool = False

    @property
    def display(self) -> str:
        keys = [self.keys, self.also] if self.also else [self.keys]
        return self.shown or " / ".join(f"`{_DISPLAY.get(k, k)}`" for k in keys)

    def bindings(self) -> list[Binding]:
        main = Binding(
            self.keys,
            self.action,
            self.footer,
            show=self.in_footer,
            priority=self.priority,
            tooltip=self.tooltip,
        )
        if not self.also:
            return [main]
        alias = Binding(
            self.also, self.action, self.footer, show=False, priority=self.also_priority
        )
        return [main, alias]


_DISPLAY = {"question_mark": "?", "left": "←", "right": "→"}

_SPECS = {spec.name: spec for spec in OP_TABLE}


def _op(name: str, help: str, **kwargs: Any) -> Key:
    """An op's key: its letter and footer word from the engine's ops table, its help and
    tooltip (the TUI's words) given here."""
    spec = _SPECS[name]
    return Key(spec.key, f"op({name!r})", spec.label, help, **kwargs)


KEYS: tuple[Key, ...] = (
    Key("escape", "cancel", "cancel", "stop a running op (or the slow-motion replay)",
        tooltip="stop the running op / the replay"),
    _op("forward", "calls the scenario's forward and keeps the loss and "
        "its graph", tooltip="loss = forward()"),
    _op("backward", "`loss.backward()`: **adds** each gradient into "
        "`.grad`", tooltip="loss.backward()"),
    _op("step", "`optimizer.step()` (then the scheduler, if any)",
        tooltip="optimizer.step()"),
    _op("zero_grad", "`optimizer.zero_grad()`: grads become `None`",
        tooltip="optimizer.zero_grad()"),
    _op("evaluate", "the scenario's evaluation (`test_data` or "
        "`evaluate()`) under `torch.no_grad()`, modules in eval mode; changes nothing",
        what="evaluate", tooltip="evaluate on test_data"),
    Key("q", "quit", "quit", "leave optdbg"),
    Key("question_mark", "help", "help", "this screen: every key"),
    _op("next", "the next op of the cycle forward → backward → step → "
        "zero_grad", tooltip="the next op of the cycle"),
    _op("iteration", "one whole forward, backward, step, zero_grad",
        what="iteration", tooltip="forward, backward, step, zero_grad"),
    Key("u", "undo", "undo", "go back one op, bit-exact (`→` redoes)",
        tooltip="go back one op (also ←)", also="left", also_priority=True),
    Key("c", "continue", "run", "whole iterations, live, until a key, a warning or a "
        "breakpoint", tooltip="run iterations until a key or a breakpoint", also="space"),
    Key("d", "diagnostics", "diagnose", "every pitfall found so far, what it means and the fix",
        tooltip="every pitfall found, with fixes"),
    Key("B", "slow_backward", "slow-mo", "backward one node at a time: the chain rule with "
        "numbers (`→` next node)", what="slow motion", tooltip="backward one node at a time"),
    Key("l", "edit_lr", "lr", "edit the learning rate, from the next step (undoable)",
        what="learning rate", tooltip="edit the learning rate"),
    Key("e", "export", "export", "write the current graph to `<scenario>-op<N>.png`",
        tooltip="write the graph to PNG"),
    Key("ctrl+s", "save_screen", "svg", "save the screen as SVG, next to the graph export: "
        "`<scenario>-op<N>-screen.svg`", what="picture", tooltip="save the screen as SVG"),
    Key("r", "reload", "reload", "load the scenario file again, from a fresh state",
        tooltip="load the scenario again"),
    Key("right", "right", "redo", "redo the op undone last (in slow motion: the next node)",
        in_footer=False, priority=True),
    Key("H", "edit_hyper", "hyper", "edit any param-group setting, from the next step "
        "(undoable)", what="hyperparameters", in_footer=False),
    Key("k", "breakpoint", "breakpoint", "where `c` stops: e.g. `loss < 8.01`, `step >= 100`, "
        "`'diverging' in warnings`", in_footer=False),
    Key("L", "landscape", "landscape", "the loss landscape: a contour with the trajectory (two "
        "parameter elements), else the loss along the last step (`e` there: PNG)",
        what="loss landscape", in_footer=False, tooltip="the loss around the trajectory"),
    Key("m", "modules", "by module", "in the graph panel: fold the nodes by module (enter on a "
        "box opens or folds its module); from any panel while the graph is shown",
        in_footer=False, tooltip="graph nodes by module"),
)  # fmt: skip


def bindings() -> list[Binding]:
    """The app's bindings, from the table."""
    return [b for key in KEYS for b in key.bindings()]


def help_rows() -> str:
    """The help screen's table of keys, in markdown."""
    rows = ["| key | op | what it does (exactly what plain PyTorch does) |", "|---|---|---|"]
    rows += [f"| {k.display} | {k.what or k.footer} | {k.help} |" for k in KEYS]
    rows.append(
        "| `1`–`6` | panels | parameters, update rule, graph, loss, log, history "
        "(narrow terminals) |"
    )
    rows.append(
        "| `g` | DAG / tree | in the graph panel: the graph drawn as a DAG (boxes and arrows, "
        "the loss at the bottom) or as a tree |"
    )
    return "\n".join(rows)


class KeyFooter(Footer):
    """Textual's compact footer, in the table's order, showing only the keys that fit whole
    (never a key cut in half); it recomposes when the width changes."""

    def __init__(self) -> None:
        super().__init__(compact=True, show_command_palette=False)
        self._width = 0

    def compose(self) -> ComposeResult:
        room = self.size.width or self.app.size.width
        used = 0
        for widget in super().compose():
            key = getattr(widget, "key_display", None)  # a FooterKey
            if key is not None:
                description = getattr(widget, "description", "")
                word = f" {description}" if description else ""
                width = cell_len(key + word) + 1  # margin-right 1
                if used + width - 1 > room:
                    continue
                used += width
            yield widget

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._width:
            self._width = event.size.width
            self.call_after_refresh(self.recompose)
