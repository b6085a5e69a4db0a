"""The line that stands in for the footer while `continue` runs."""

from __future__ import annotations

from rich.text import Text
from textual.events import Blur, Click, Key
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from .text import literal

PAUSE_HINT = "any key pauses"


class RunningBanner(Widget, can_focus=True):
    """Docked over the footer while `continue` runs: the run's counters, live; any key or a
    click pauses it. It holds the focus while shown, so every key reaches it first.

    A one-line widget on the screen, not a translucent modal screen: a modal re-renders the
    whole screen behind it at every frame, which took most of a core from the loop."""

    class Paused(Message):
        """The user asked the run to pause (a key, a click, or the focus moved away)."""

        def __init__(self, banner: RunningBanner) -> None:
            super().__init__()
            self.banner = banner
            """Which run's banner (a removed banner's blur must not pause the next run)."""

    line: reactive[str] = reactive("▶ running…")
    """What the run has done so far (repainted in place: its size never changes)."""

    def __init__(self) -> None:
        super().__init__(id="running")
        self.pausing = False
        """Set once the user asked to pause: the run stops after the op in progress."""

    def render(self) -> Text:
        hint = "" if self.pausing else f"   ·   {PAUSE_HINT}"
        return literal(f"{self.line}{hint}", one_line=True)

    def show(self, text: str) -> None:
        """The run's counters (`text` is the app's own words)."""
        if not self.pausing:
            self.line = f"▶ {text}"

    def on_key(self, event: Key) -> None:
        event.stop()
        event.prevent_default()  # the key only pauses: it performs nothing else
        self._pause()

    def on_click(self, event: Click) -> None:
        event.stop()
        self._pause()

    def on_blur(self, _event: Blur) -> None:
        self._pause()  # a click moved the focus to a panel

    def _pause(self) -> None:
        if not self.pausing:
            self.pausing = True
            self.line = "⏸ pausing after the op in progress…"
            self.post_message(self.Paused(self))
