"""`optdbg compare`: variants of scenarios in lockstep, as a table, JSON Lines or the TUI.

Headless (--table, --json) it never imports textual.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from optdbg.engine import fmt

from .cli import EXIT_OK, EXIT_USAGE, _add_set, _op_words

if TYPE_CHECKING:
    from optdbg.engine.debugger.facade import CompareDebugger
    from optdbg.engine.events import Event


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
    """The variants in lockstep through the debugger façade (headless: no views; with
    --json, every variant's records)."""
    from optdbg.engine import ScenarioError
    from optdbg.engine.compare import Row, row_of, table
    from optdbg.engine.debugger import Perform, Performed, RunEpoch, Tabulate, Tabulated
    from optdbg.engine.debugger.facade import CompareDebugger
    from optdbg.engine.report import record_line

    try:
        debugger = CompareDebugger.start(variants, panels=False, records=ns.json)
    except ScenarioError as e:
        print(f"optdbg: cannot load the scenario\n{e}", file=sys.stderr)
        return EXIT_USAGE
    commands = [RunEpoch()] if ns.epochs else [Perform(word) for word in words]
    rows: list[list[Row]] = []
    labels: list[str] = []
    finals: tuple[Any, ...] = ()
    for _ in range(ns.epochs or ns.repeat):
        evaluations = [""] * len(variants)
        for command in commands:
            performed = debugger.execute(command)
            if not isinstance(performed, Performed):
                print(f"optdbg: {getattr(performed, 'text', performed)}", file=sys.stderr)
                return EXIT_USAGE
            for k, variant in enumerate(performed.variants):
                for r in variant.records:
                    line = record_line(r.event, r.loss, r.params, variant=variant.label)
                    print(line, file=out, flush=True)
                if ns.epochs:
                    evaluations[k] = _evaluation(variant.events)
        tabulated = debugger.execute(Tabulate())
        assert isinstance(tabulated, Tabulated)
        labels, finals = list(tabulated.labels), tabulated.snapshots
        rows.append([row_of(s, e) for s, e in zip(finals, evaluations, strict=True)])
    if ns.table:
        unit = "epoch" if ns.epochs else "#"
        print(table(labels, rows, finals, unit), file=out, flush=True)
    return _exports(ns, debugger)


def _evaluation(events: Sequence[Event]) -> str:
    """The epoch's evaluation as the table shows it (the number the regression lecture
    compares: the full-data loss); empty without one."""
    last = next((e for e in reversed(events) if e.op == "evaluate"), None)
    values = (last.evaluation or {}) if last is not None else {}
    return ", ".join(f"{k} {fmt.num(v, 10)}" for k, v in values.items())


def _exports(ns: argparse.Namespace, debugger: CompareDebugger) -> int:
    """The pictures asked for with --losses / --landscape."""
    from optdbg.engine.debugger import ExportLandscape, ExportLosses, Noted

    commands: list[ExportLosses | ExportLandscape] = []
    if ns.losses:
        commands.append(ExportLosses(ns.losses, ns.force))
    if ns.landscape:
        commands.append(ExportLandscape(ns.landscape, ns.force))
    code = EXIT_OK
    for command in commands:
        outcome = debugger.execute(command)
        text = getattr(outcome, "text", str(outcome))
        print(f"optdbg: {text}", file=sys.stderr)
        if not isinstance(outcome, Noted) or outcome.severity == "error":
            code = EXIT_USAGE
    return code
