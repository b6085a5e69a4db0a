"""Modal screens: help, and the picker of built-in scenarios."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from .keys import help_rows
from .text import literal, printable

HELP_TEMPLATE = """\
# optdbg keys

{keys}

Every op is allowed in any order, wrong ones included: that is the point.
Press `b` twice without `z` and watch `.grad` double; a backward through a freed
graph is refused by PyTorch, and optdbg explains why. The **acc** column counts the
backward passes summed in `.grad` since the last `zero_grad`.

`ctrl+p` opens the command palette with every action by name.

Scenario files are Python and run with your rights: open only files you trust.
"""
HELP = HELP_TEMPLATE.format(keys=help_rows())


class HelpScreen(ModalScreen[None]):
    """Keys and what each op does."""

    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "Close help"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            from textual.widgets import Markdown  # markdown-it costs ~30 ms: only when opened

            yield Markdown(HELP)
        yield Footer()


class PickerScreen(ModalScreen[str | None]):
    """Choose one of the built-in scenarios."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Cancel"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, scenarios: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.scenarios = scenarios

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Static("Choose a built-in scenario  (Enter to open)", id="picker-title")
            yield OptionList(
                *(
                    Option(Text.assemble(printable(title), "\n", (name, "dim")), id=name)
                    for name, title, _ in self.scenarios
                ),
                id="picker-list",
            )
            yield Static(id="picker-description")
        yield Footer()

    def on_mount(self) -> None:
        self._describe(0)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._describe(event.option_index)

    def _describe(self, index: int) -> None:
        if 0 <= index < len(self.scenarios):
            _, title, description = self.scenarios[index]
            # docstrings are wrapped for the editor: let the terminal wrap them instead
            paragraphs = (" ".join(p.split()) for p in (description or title).split("\n\n"))
            text = "\n\n".join(paragraphs)
            self.query_one("#picker-description", Static).update(literal(text))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)
