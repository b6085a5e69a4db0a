"""Text from a scenario is text: whatever a parameter name, a docstring or an exception
message holds (markup, brackets, escape sequences, carriage returns, bidi overrides, lone
surrogates, any unicode), the headless outputs (run's lines, --json, --quiet, the DOT and
SVG exports) neither crash nor drop it nor emit a control character. The TUI's panels
are tested with the same kind of text in the TUI tests.
"""

from __future__ import annotations

import io
import json
import string
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from xml.etree import ElementTree

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optdbg.engine import Session, fmt
from optdbg.engine.export import export_graph, find_renderer, to_dot
from optdbg.tui.cli import main as cli_main

TRACEBACK = "Traceback (most recent call last)"
CONTROL = [chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)] if chr(c) not in "\n\t"]
HOSTILE = [
    "[/]",
    "[bold red]",
    "[/data/shard-3]",
    "[link=file:///etc]x[/link]",
    "\x1b[2J",
    "\x1b]0;title\x07",
    "\r",
    "\u202e",
    "\ud800",
    "\\",
    '"',
    "\x00",
    "😀",
]
text = st.lists(
    st.one_of(
        st.sampled_from(HOSTILE),
        st.characters(codec=None, exclude_categories=()),
        st.sampled_from(string.printable),
    ),
    min_size=1,
    max_size=12,
).map("".join)
RESERVED = {"optimizer", "forward", "torch", "calls", "data", "model", "loss_fn", "scheduler"}
names = text.filter(lambda s: not s.startswith("__") and s not in RESERVED)


def unsafe(out: str) -> list[str]:
    """Control characters in `out`, apart from newlines and tabs (and lone surrogates)."""
    return [c for c in out if c in CONTROL or "\ud800" <= c <= "\udfff" or c == "\u202e"]


def scenario(folder: Path, name: str, doc: str, message: str) -> Path:
    """A valid scenario with a hostile parameter name, docstring and second-forward error."""
    path = folder / "hostile.py"
    path.write_text(
        f"{doc!r}\n"
        "import torch\n"
        f"globals()[{name!r}] = torch.tensor([1.0, -2.0], requires_grad=True)\n"
        f"optimizer = torch.optim.SGD([globals()[{name!r}]], lr=0.1)\n"
        "calls = []\n"
        "def forward():\n"
        "    calls.append(1)\n"
        "    if len(calls) == 2:\n"
        f"        raise ValueError({message!r})\n"
        f"    return (globals()[{name!r}] ** 2).sum()\n",
        encoding="utf-8",
    )
    return path


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli_main(list(args))
    return code, out.getvalue(), err.getvalue()


OPS = "f b s f z"


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=names, doc=text, message=text)
def test_hostile_text_survives_every_headless_output(
    tmp_path: Path, name: str, doc: str, message: str
) -> None:
    path = scenario(tmp_path, name, doc, message)
    shown_name, shown_message = fmt.name(name), fmt.text(message.strip())
    code, out, err = run_cli("run", str(path), "--ops", OPS)
    assert code == 0 and TRACEBACK not in out + err, err
    assert not unsafe(out + err)
    assert shown_name in out
    assert not shown_message.strip() or shown_message.splitlines()[0] in out
    code, out, err = run_cli("run", str(path), "--ops", OPS, "--json")
    assert code == 0 and not unsafe(out + err), err
    records = [json.loads(line) for line in out.splitlines()]
    assert [list(r["params"]) for r in records] == [[shown_name]] * len(OPS.split())
    assert records[3]["error"]["message"] == shown_message
    code, out, err = run_cli("run", str(path), "--ops", OPS, "--quiet")
    assert code == 0 and not unsafe(out + err), err
    session = Session.open(path)
    assert session.perform("f")[0].ok
    title = session.snapshot().title
    graph = session.graph()
    assert graph is not None and title and not unsafe(title)
    dot = to_dot(graph, title=title)
    assert not unsafe(dot)
    for shown in (shown_name, title):
        assert dot_text(shown) in dot


def dot_text(shown: str) -> str:
    return shown.replace("\\", "\\\\").replace('"', '\\"')


@pytest.mark.skipif(find_renderer() is None, reason="no Graphviz renderer")
def test_an_svg_export_of_hostile_names_is_valid_xml(tmp_path: Path) -> None:
    path = scenario(tmp_path, "w\x1b[31m[/]\x07", "Title \x1b]0;x\x07 [b]", "m")
    session = Session.open(path)
    session.capture_graph = True
    session.perform("f")
    graph = session.graph()
    assert graph is not None
    result = export_graph(graph, tmp_path / "g.svg", title=session.snapshot().title)
    assert result.ok, result.message
    data = (tmp_path / "g.svg").read_bytes()
    ElementTree.fromstring(data)  # well-formed XML
    assert b"\x1b" not in data and b"\\x1b[31m[/]\\x07" in data
