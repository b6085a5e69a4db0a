"""Text from a scenario, a script or the user, made safe to show.

Such text is never Rich markup (a parameter named `[/]` is shown as `[/]`, not parsed) and
never a control code for the terminal (an ESC in a docstring cannot clear the screen or
change colours): control characters are shown as the engine writes them everywhere
(`engine.fmt.text`: `\\x1b`). Widgets receive such text as `rich.text.Text` (which Textual
does not parse) built with `literal`, or cleaned with `clean`; notifications go through the
app's `notify`, which uses `printable`.
"""

from __future__ import annotations

import re
from itertools import accumulate

from rich.text import Span, Text

from optdbg.engine import fmt


def printable(value: object, one_line: bool = False) -> str:
    """`value` as text the terminal shows literally: control codes as visible escapes; on
    one line (a table cell, a tree label, the status line) line breaks and tabs too."""
    text = fmt.text(_str(value), limit=None, newlines=not one_line)
    return text.replace("\t", " ") if one_line else text


_TYPED_AWAY = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
"""What a value typed or pasted into a dialog never holds: control characters (a pasted
ESC sequence, a NUL, a bidi override), which the terminal would act on."""


def typed(value: str) -> str:
    """What the user typed or pasted into a one-line field, without control characters."""
    return _TYPED_AWAY.sub("", value)


def literal(value: object, style: str = "", one_line: bool = False) -> Text:
    """`value` as a Rich Text shown as it is: neither markup nor control codes."""
    return Text(printable(value, one_line), style=style)


def clean(text: Text, one_line: bool = False) -> Text:
    """The Text with its control codes made visible; its styles stay on the same
    characters (a new Text when something changed)."""
    plain = text.plain
    if printable(plain, one_line) == plain:
        return text
    pieces = [printable(ch, one_line) for ch in plain]
    ends = [0, *accumulate(len(p) for p in pieces)]
    shown = text.blank_copy("".join(pieces))
    shown.spans = [Span(ends[s.start], ends[min(s.end, len(plain))], s.style) for s in text.spans]
    return shown


def _str(value: object) -> str:
    if isinstance(value, str):
        return value
    try:
        return str(value)
    except Exception as e:  # an object whose __str__ raises is still shown
        return f"<{type(value).__name__}: str() raised {type(e).__name__}>"
