"""The `optdbg` command: open the TUI, list built-ins, or run a scenario headless."""

from __future__ import annotations

import argparse
import json
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import TextIO

EXIT_OK, EXIT_WARNINGS, EXIT_USAGE = 0, 1, 2


def _version() -> str:
    try:
        return version("optdbg")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def _main_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optdbg",
        description="Step through a PyTorch optimization loop one operation at a time.",
        epilog=(
            "subcommands:\n"
            "  optdbg run SCENARIO [--ops OPS] [--repeat N] [--json] [--quiet]\n"
            "                      run ops headless and print what each did\n\n"
            "SCENARIO is a path to a .py file or the name of a built-in (see --list).\n"
            "Scenario files are Python and run with your rights: open only files you trust."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("scenario", nargs="?", help="scenario file or built-in name")
    parser.add_argument("--list", action="store_true", help="list the built-in scenarios")
    parser.add_argument("--version", action="version", version=f"optdbg {_version()}")
    return parser


def _run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optdbg run",
        description="Run ops on a scenario without the TUI and report what each did.",
    )
    parser.add_argument("scenario", help="scenario file or built-in name")
    parser.add_argument(
        "--ops",
        default="z f b s",
        help='whitespace-separated op words: f b s z n i or their long names (default "z f b s")',
    )
    parser.add_argument("--repeat", type=int, default=1, metavar="N", help="perform OPS N times")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON object per op (JSON Lines)")
    out.add_argument("--quiet", action="store_true", help="only a one-line summary at the end")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "run":
        return run_command(args[1:])
    ns = _main_parser().parse_args(args)
    if ns.list:
        return list_command(sys.stdout)
    from .launch import open_tui

    return open_tui(ns.scenario)


def list_command(out: TextIO) -> int:
    from optdbg.engine.builtins import builtin_names, builtin_title

    names = builtin_names()
    width = max(len(n) for n in names)
    for name in names:
        title, _ = builtin_title(name)
        out.write(f"{name:<{width}}  {title}\n")
    return EXIT_OK


def run_command(argv: list[str]) -> int:
    parser = _run_parser()
    ns = parser.parse_args(argv)
    from optdbg.engine.events import WORDS

    words = ns.ops.split()
    unknown = [w for w in words if w not in WORDS]
    if unknown or not words:
        parser.error(
            f"unknown op word(s): {' '.join(unknown)}; use f b s z n i "
            "(forward backward step zero_grad next iteration)"
            if unknown
            else "--ops is empty"
        )
    if ns.repeat < 1:
        parser.error("--repeat must be at least 1")

    from optdbg.engine import ScenarioError, Session
    from optdbg.engine.report import record, summary_line, trace_line

    try:
        session = Session.open(ns.scenario)
    except ScenarioError as e:
        print(f"optdbg: cannot load the scenario\n{e}", file=sys.stderr)
        return EXIT_USAGE
    events = []
    for _ in range(ns.repeat):
        for word in words:
            for event in session.perform(word):
                events.append(event)
                if ns.json:
                    line = json.dumps(record(event, session.snapshot()))
                    print(line, flush=True)
                elif not ns.quiet:
                    print(trace_line(event), flush=True)
    if ns.quiet:
        print(summary_line(events, session.snapshot()))
    return EXIT_OK
