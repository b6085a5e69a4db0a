"""`optdbg compare`: variants of scenarios in lockstep, as a table, JSON Lines or the TUI.

Headless (--table, --json) it never imports textual.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import TYPE_CHECKING, Any, TextIO

from optdbg.engine import fmt

from .cli import EXIT_OK, EXIT_USAGE, _add_set, _op_words

if TYPE_CHECKING:
    from optdbg.engine.compare import Comparison, Row


def _compare_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optdbg compare",
        description=(
            "Run variants of scenarios in lockstep: each SCENARIO given, times one variant "
            "per --set value. Every op goes to all variants; each variant computes exactly "
            "what it computes alone. Without --table or --json, opens the comparison view."
        ),
        epilog=(
            "examples:\n"
            '  optdbg compare quadratic_bowl --set lr=0.1,10,0.25 --ops "f z b s" '
            "--repeat 20 --table\n"
            "  optdbg compare linear_regression_minibatch --zip "
            "--set batch_size=10,100,1000,10000 \\\n"
            "      --set lr=1e-4,1e-5,1e-6,1e-7 --epochs 30 --table"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="files or built-ins")
    _add_set(parser, several=True)
    parser.add_argument(
        "--zip", action="store_true", help="pair the --set values in order instead of crossing"
    )
    parser.add_argument(
        "--ops", default=None, help='op words performed by every variant (default "z f b s")'
    )
    parser.add_argument("--repeat", type=int, default=1, metavar="N", help="perform OPS N times")
    parser.add_argument(
        "--epochs",
        type=int,
        metavar="N",
        help="instead of OPS: N whole epochs of `data` per variant (as many iterations as "
        "each variant's batches), one table row per epoch",
    )
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--table", action="store_true", help="print the comparison table")
    out.add_argument("--json", action="store_true", help='JSON Lines, each with "variant"')
    parser.add_argument(
        "--losses", metavar="FILE", help="write the loss curves overlaid to FILE (.png or .svg)"
    )
    parser.add_argument(
        "--landscape",
        metavar="FILE",
        help="write the loss landscape with every variant's trajectory to FILE (.png or .svg)",
    )
    parser.add_argument("--force", action="store_true", help="replace FILE if it exists")
    return parser


def _settings(parser: argparse.ArgumentParser, texts: list[str]) -> list[tuple[str, list[Any]]]:
    from optdbg.engine.overrides import OverrideError, parse_values, split_setting

    settings: list[tuple[str, list[Any]]] = []
    try:
        for text in texts:
            name, values = split_setting(text)
            if any(name == n for n, _ in settings):
                parser.error(f"--set {name} is given twice: list its values once, V1,V2,...")
            settings.append((name, parse_values(values)))
    except OverrideError as e:
        parser.error(str(e))
    return settings


def compare_command(argv: list[str]) -> int:
    parser = _compare_parser()
    ns = parser.parse_args(argv)
    if ns.repeat < 1:
        parser.error("--repeat must be at least 1")
    if ns.epochs is not None and (ns.epochs < 1 or ns.ops is not None):
        parser.error("--epochs takes a number >= 1, and replaces --ops/--repeat")
    words = [] if ns.epochs else _op_words(parser, ns.ops or "z f b s")
    from optdbg.engine.compare import make_variants
    from optdbg.engine.overrides import OverrideError, check

    try:
        variants = make_variants(ns.scenarios, _settings(parser, ns.set), ns.zip)
        for variant in variants:
            check(variant.spec, variant.overrides)
    except OverrideError as e:
        parser.error(str(e))
    for path in (ns.losses, ns.landscape):
        if path is not None and not path.lower().endswith((".png", ".svg")):
            parser.error(f"cannot tell the format of {path!r}: name the file .png or .svg")
    if not (ns.table or ns.json):
        from .compare_app import open_compare

        return open_compare(variants, words if ns.ops else [], ns.repeat, ns.epochs)
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):  # the scenarios' prints go to stderr
        return _headless(ns, variants, words, out)


def _headless(ns: argparse.Namespace, variants: list[Any], words: list[str], out: TextIO) -> int:
    from optdbg.engine import ScenarioError
    from optdbg.engine.compare import Comparison, table

    try:
        comparison = Comparison.open(variants)
    except ScenarioError as e:
        print(f"optdbg: cannot load the scenario\n{e}", file=sys.stderr)
        return EXIT_USAGE
    rows: list[list[Row]] = []
    try:
        if ns.epochs:
            for _ in range(ns.epochs):
                rows.append(_epoch(comparison, ns.json, out))
        else:
            for _ in range(ns.repeat):
                rows.append(_repetition(comparison, words, ns.json, out))
    except ValueError as e:
        print(f"optdbg: {e}", file=sys.stderr)
        return EXIT_USAGE
    finals = [s.snapshot() for s in comparison.sessions]
    if ns.table:
        unit = "epoch" if ns.epochs else "#"
        print(table(comparison.labels, rows, finals, unit), file=out, flush=True)
    return _exports(ns, comparison)


def _repetition(comparison: Comparison, words: list[str], as_json: bool, out: TextIO) -> list[Row]:
    from optdbg.engine.compare import row_of

    for word in words:
        for label, events, session in zip(
            comparison.labels, comparison.perform(word), comparison.sessions, strict=True
        ):
            if as_json:
                _write(out, label, events, session)
    return [row_of(s.snapshot()) for s in comparison.sessions]


def _epoch(comparison: Comparison, as_json: bool, out: TextIO) -> list[Row]:
    """One epoch of every variant, then its evaluation when the scenario has one (the
    number the regression lecture compares: the full-data loss)."""
    from optdbg.engine.compare import row_of

    rows = []
    for i, (label, session) in enumerate(zip(comparison.labels, comparison.sessions, strict=True)):

        def write(events: list[Any], label: str = label, session: Any = session) -> None:
            _write(out, label, events, session)

        comparison.run_epoch(i, write if as_json else None)
        evaluation = ""
        if session.scenario.evaluation is not None:
            with comparison.running(i):
                event = session.perform("evaluate")[-1]
            if as_json:
                write([event])
            values = event.evaluation or {}
            evaluation = ", ".join(f"{k} {fmt.num(v, 10)}" for k, v in values.items())
        rows.append(row_of(session.snapshot(), evaluation))
    return rows


def _write(out: TextIO, label: str, events: list[Any], session: Any) -> None:
    from optdbg.engine.report import json_line

    for event in events:
        print(json_line(event, session, variant=label), file=out, flush=True)


def _exports(ns: argparse.Namespace, comparison: Comparison) -> int:
    """The pictures asked for with --losses / --landscape."""
    from optdbg.engine.plots import PlotError, write_landscape, write_loss_curves

    sessions, labels = comparison.sessions, comparison.labels
    title = f"{sessions[0].scenario.name}: {', '.join(labels)}"
    jobs = []
    if ns.losses:
        curves = [s.loss_history for s in sessions]
        jobs.append(lambda: write_loss_curves(ns.losses, labels, curves, title, ns.force))
    if ns.landscape:
        jobs.append(lambda: write_landscape(ns.landscape, sessions, labels, title, ns.force))
    code = EXIT_OK
    for job in jobs:
        try:
            print(f"optdbg: {job()}", file=sys.stderr)
        except PlotError as e:
            print(f"optdbg: {e}", file=sys.stderr)
            code = EXIT_USAGE
    return code
