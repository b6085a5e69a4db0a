"""The `optdbg` command: open the TUI, list built-ins, run a scenario or export its graph."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from optdbg.engine.events import Event

EXIT_OK, EXIT_WARNINGS, EXIT_USAGE = 0, 1, 2
DEFAULT_MAX_ITERATIONS = 1000


def _condition_names() -> list[str]:
    return ["loss", "step", "epoch", "batch", "iteration", "grad_norm", "warnings", "lr", "op"]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("optdbg")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


class _VersionAction(argparse.Action):
    """--version, looked up only when asked (importlib.metadata costs ~60 ms at start-up)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any) -> None:
        print(f"optdbg {_version()}")  # on stdout, as argparse's own version action does
        parser.exit()


def _main_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optdbg",
        description="Step through a PyTorch optimization loop one operation at a time.",
        epilog=(
            "subcommands:\n"
            "  optdbg run SCENARIO [--ops OPS] [--repeat N] [--json] [--quiet] [--strict]\n"
            "                      [--until CONDITION] [--max-iterations N]\n"
            "                      run ops headless and print what each did\n"
            "  optdbg export SCENARIO [--ops OPS] [-o FILE] [--force]\n"
            "                      run ops headless, then write the graph to .png/.svg/.dot\n"
            "  optdbg serve [SCENARIO] [--host HOST] [--port PORT]\n"
            "                      serve the TUI to web browsers, one session per tab\n"
            "  optdbg trace [--json | --quiet | --json-dir DIR] [--strict] [--max-ops N]\n"
            "               SCRIPT [ARGS ...]\n"
            "                      debug a training script: its own backward/step/zero_grad\n"
            "                      calls are the ops (the TUI pauses before each)\n"
            "  optdbg compare SCENARIO [SCENARIO ...] [--set NAME=V1,V2,...] [--zip]\n"
            "                      [--ops OPS] [--repeat N] [--epochs N] [--table | --json]\n"
            "                      run variants in lockstep: a table, JSON, or the TUI\n\n"
            "SCENARIO is a path to a .py file or the name of a built-in (see --list).\n"
            "Scenario files are Python and run with your rights: open only files you trust."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("scenario", nargs="?", help="scenario file or built-in name")
    parser.add_argument("--list", action="store_true", help="list the built-in scenarios")
    _add_set(parser)
    parser.add_argument("--version", action=_VersionAction)
    return parser


def _add_set(parser: argparse.ArgumentParser, several: bool = False) -> None:
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=V1,V2,..." if several else "NAME=VALUE",
        help=(
            "one variant per value of a top-level `NAME = <literal>` of the scenario "
            "(several --set: every combination, or with --zip the values paired in order), "
            "e.g. --set lr=0.1,10,0.25"
            if several
            else "replace the literal of a top-level assignment `NAME = <literal>` of the "
            "scenario before it runs, e.g. --set lr=0.25 (repeatable)"
        ),
    )


def _overrides(parser: argparse.ArgumentParser, settings: list[str]) -> dict[str, Any]:
    """The `--set NAME=VALUE` of run and the TUI, parsed (argument errors exit 2)."""
    from optdbg.engine.overrides import OverrideError, parse_value, split_setting

    try:
        pairs = [split_setting(text) for text in settings]
        return {name: parse_value(value) for name, value in pairs}
    except OverrideError as e:
        parser.error(str(e))


def _check_overrides(parser: argparse.ArgumentParser, spec: str, values: dict[str, Any]) -> None:
    """Refuse a --set the scenario cannot take before anything runs (no torch needed)."""
    from optdbg.engine.overrides import OverrideError, check

    try:
        check(spec, values)
    except OverrideError as e:
        parser.error(str(e))


def _run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optdbg run",
        description="Run ops on a scenario without the TUI and report what each did.",
    )
    parser.add_argument("scenario", help="scenario file or built-in name")
    parser.add_argument(
        "--ops",
        default=None,
        help="whitespace-separated op words: f b s z n i, u (undo), redo, or their long names "
        '(default "z f b s"; with --until or --max-iterations, none)',
    )
    parser.add_argument("--repeat", type=int, default=1, metavar="N", help="perform OPS N times")
    parser.add_argument(
        "--until",
        metavar="CONDITION",
        help="after OPS, run whole iterations and stop right after the first op at which "
        'CONDITION holds, e.g. "loss < 8.01", "\'grad-accumulated\' in warnings", '
        '"grad_norm > 1e3 or not isfinite(loss)". Names: '
        + ", ".join(_condition_names())
        + "; functions: abs isnan isinf isfinite min max",
    )
    parser.add_argument(
        "--max-iterations",
        type=int,
        metavar="N",
        help=f"with --until, stop after N iterations at most (default {DEFAULT_MAX_ITERATIONS}); "
        "alone, run N iterations",
    )
    _add_set(parser)
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON object per op (JSON Lines)")
    out.add_argument("--quiet", action="store_true", help="only a one-line summary at the end")
    parser.add_argument(
        "--strict",
        action="store_true",
        help=(
            "exit with status 1 when any pitfall warning fired (after printing as usual); "
            "without it the status is 0 whatever was found. Status 2 always means the "
            "scenario could not be loaded or the arguments are wrong"
        ),
    )
    return parser


def _export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optdbg export",
        description=(
            "Run ops on a scenario without the TUI, then write the autograd graph of the "
            "last loss, with the values and gradients optdbg shows, to a file. The format "
            "comes from the extension: .png, .svg or .dot. Rendering uses Graphviz's dot "
            "when it is on PATH, else graphviz-pure; without either the DOT is written."
        ),
    )
    parser.add_argument("scenario", help="scenario file or built-in name")
    parser.add_argument(
        "--ops",
        default="f",
        help='whitespace-separated op words, as for run (default "f"; "f b" adds gradients)',
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="file to write (.png, .svg or .dot; default SCENARIO-opN.png, a free name)",
    )
    parser.add_argument("--force", action="store_true", help="replace FILE if it exists")
    parser.add_argument(
        "--style",
        choices=("optdbg", "torchviz"),
        default="optdbg",
        help="optdbg: the graph with data, grads and modules (default); torchviz: "
        "torchviz's own make_dot drawing of the loss, for comparison",
    )
    return parser


EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """The console entry point: Ctrl-C and a closed pipe end it quietly, never a traceback.
    As the console script (no `argv`), `run` and `export` also end threads the scenario left
    running (`trace` runs a script as Python does, which waits for them)."""
    args = sys.argv[1:] if argv is None else argv
    try:
        code = _dispatch(args)
    except KeyboardInterrupt:
        print("optdbg: interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `optdbg run ... | head`
        sys.stderr.close()
        return EXIT_OK
    if argv is None and args[:1] in (["run"], ["export"]):
        _end_leftover_threads(code)
    return code


def _end_leftover_threads(code: int) -> None:
    """A thread the scenario started and never ended would keep Python from exiting: say so,
    flush what optdbg wrote, and end the process with optdbg's own status."""
    main = threading.main_thread()
    left = [t for t in threading.enumerate() if t is not main and not t.daemon and t.is_alive()]
    if not left:
        return
    names = ", ".join(_printable(t.name) for t in left[:3]) + (" ..." if len(left) > 3 else "")
    print(
        f"optdbg: the scenario left {len(left)} thread(s) running ({names}); "
        "optdbg ends them as it exits",
        file=sys.stderr,
    )
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _printable(text: str) -> str:
    """Text from a scenario, escaped for the terminal (engine.fmt, imported with torch)."""
    from optdbg.engine.fmt import text as escaped

    return escaped(text, limit=None)


def _say(text: str, stream: TextIO) -> None:
    print(_printable(text), file=stream, flush=True)


def _dispatch(args: list[str]) -> int:
    if args and args[0] == "run":
        return run_command(args[1:])
    if args and args[0] == "export":
        return export_command(args[1:])
    if args and args[0] == "serve":
        from .serve import serve_command

        return serve_command(args[1:])
    if args and args[0] == "trace":
        from .trace_cli import trace_command

        return trace_command(args[1:])
    if args and args[0] == "compare":
        from .compare_cli import compare_command

        return compare_command(args[1:])
    parser = _main_parser()
    ns = parser.parse_args(args)
    if ns.list:
        return list_command(sys.stdout)
    overrides = _overrides(parser, ns.set)
    if overrides:
        if ns.scenario is None:
            parser.error("--set needs a SCENARIO")
        _check_overrides(parser, ns.scenario, overrides)
    from .launch import open_tui

    return open_tui(ns.scenario, overrides)


def list_command(out: TextIO) -> int:
    from optdbg.engine.builtins import builtin_names, builtin_title

    names = builtin_names()
    width = max(len(n) for n in names)
    for name in names:
        title, _ = builtin_title(name)
        out.write(f"{name:<{width}}  {title}\n")
    return EXIT_OK


def _op_words(parser: argparse.ArgumentParser, ops: str) -> list[str]:
    from optdbg.engine.events import WORDS

    words = ops.split()
    unknown = [w for w in words if w not in WORDS]
    if unknown or not words:
        parser.error(
            f"unknown op word(s): {' '.join(unknown)}; use f b s z n i u redo "
            "(forward backward step zero_grad next iteration undo redo)"
            if unknown
            else "--ops is empty"
        )
    return words


def _ops_or_default(ops: str | None) -> str:
    """--ops as given (an empty one is an error, not the default), or the default."""
    return "z f b s" if ops is None else ops


def run_command(argv: list[str]) -> int:
    parser = _run_parser()
    ns = parser.parse_args(argv)
    running = ns.until is not None or ns.max_iterations is not None
    words = [] if ns.ops is None and running else _op_words(parser, _ops_or_default(ns.ops))
    if ns.repeat < 1:
        parser.error("--repeat must be at least 1")
    if ns.max_iterations is not None and ns.max_iterations < 1:
        parser.error("--max-iterations must be at least 1")
    ns.overrides = _overrides(parser, ns.set)
    _check_overrides(parser, ns.scenario, ns.overrides)
    if ns.until is not None:
        from optdbg.engine.breakpoints import ConditionError, parse_condition

        try:
            parse_condition(ns.until)
        except ConditionError as e:
            parser.error(f"invalid --until condition: {e}")

    from optdbg.engine.guard import user_interrupts

    # stdout carries only optdbg's records; what the scenario prints goes to stderr
    with _records_stream() as out, user_interrupts():
        return _run(ns, words, running, out)


@contextlib.contextmanager
def _records_stream() -> Iterator[TextIO]:
    """The stream for optdbg's records, out of the scenario's reach: within the block,
    sys.stdout is stderr, and when stdout is a file descriptor, that descriptor itself
    points at stderr too (so sys.__stdout__, C code and child processes write there), the
    records going to a private duplicate of it."""
    out = sys.stdout
    try:
        fd, err = out.fileno(), sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (a test's StringIO)
        with contextlib.redirect_stdout(sys.stderr):
            yield out
        return
    out.flush()
    private = os.dup(fd)
    os.dup2(err, fd)
    records = os.fdopen(
        private, "w", encoding=out.encoding or "utf-8", errors="backslashreplace", closefd=False
    )
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield records
    finally:
        with contextlib.suppress(OSError):
            records.flush()
        os.dup2(private, fd)
        os.close(private)


def _run(ns: argparse.Namespace, words: list[str], running: bool, out: TextIO) -> int:
    """The ops, then the run until the condition, through the debugger façade (headless:
    no views; with --json, each op's record)."""
    from optdbg.engine import ScenarioError
    from optdbg.engine.debugger import (
        Continued,
        ContinueUntil,
        LockstepProgress,
        Perform,
        Performed,
        Progress,
        Select,
    )
    from optdbg.engine.debugger.facade import Debugger
    from optdbg.engine.report import record_line, summary_line, trace_line

    try:
        debugger = Debugger.open(
            ns.scenario,
            ns.overrides,
            panels=False,
            records=ns.json,
            summaries=not (ns.quiet or ns.json),  # each prints no op's summary line
        )
    except ScenarioError as e:
        print(f"optdbg: cannot load the scenario\n{e}", file=sys.stderr)
        return EXIT_USAGE
    events: list[Event] = []

    def show(progress: Progress | LockstepProgress) -> None:
        if not isinstance(progress, Progress):  # a comparison's: not from this debugger
            return
        events.append(progress.event)
        if progress.record is not None:  # --json
            record = progress.record
            print(record_line(record.event, record.loss, record.params), file=out, flush=True)
        elif not ns.quiet:
            _say(trace_line(progress.event), out)

    for _ in range(ns.repeat):
        for word in words:
            performed = debugger.execute(Perform(word))
            if not isinstance(performed, Performed):  # the words were checked: an engine bug
                return _internal_error(performed)
            records = performed.records or (None,) * len(performed.events)
            for event, record in zip(performed.events, records, strict=True):
                show(Progress(event, None, record))
    stopped = None
    if running:
        limit = ns.max_iterations or DEFAULT_MAX_ITERATIONS
        until = ContinueUntil(ns.until or "", False, limit, progress_every=0.0)
        ran = debugger.execute(until, on_progress=show)
        if not isinstance(ran, Continued):  # the condition was checked: an engine bug
            return _internal_error(ran)
        stopped = ran.result.message
    if ns.quiet:
        view = debugger.execute(Select()).view
        assert view is not None
        _say(summary_line(events, view.snapshot), out)
    if stopped is not None:
        _say(f"stopped: {stopped}", sys.stderr if ns.json else out)
    if ns.strict and any(event.warnings for event in events):
        return EXIT_WARNINGS
    return EXIT_OK


def _internal_error(outcome: Any) -> int:
    """A command that failed inside optdbg: its message, not a traceback."""
    print(f"optdbg: internal error: {getattr(outcome, 'text', outcome)}", file=sys.stderr)
    return EXIT_WARNINGS


def export_command(argv: list[str]) -> int:
    """The ops, then the graph written, through the debugger façade (headless, recording
    the graph's data as the TUI does)."""
    parser = _export_parser()
    ns = parser.parse_args(argv)
    words = _op_words(parser, ns.ops)
    from pathlib import Path

    from optdbg.engine.export import FORMATS

    if ns.output is not None and Path(ns.output).suffix.lower() not in FORMATS:
        parser.error(f"cannot tell the format of {ns.output!r}: name the file .png, .svg or .dot")

    from optdbg.engine import ScenarioError
    from optdbg.engine.debugger import Exported, ExportGraph, Perform, Performed
    from optdbg.engine.debugger.facade import Debugger
    from optdbg.engine.guard import user_interrupts

    with contextlib.redirect_stdout(sys.stderr), user_interrupts():
        try:
            debugger = Debugger.open(ns.scenario, panels=False, graph=True)
        except ScenarioError as e:
            print(f"optdbg: cannot load the scenario\n{e}", file=sys.stderr)
            return EXIT_USAGE
        for word in words:
            performed = debugger.execute(Perform(word))
            if not isinstance(performed, Performed):  # the words were checked: an engine bug
                return _internal_error(performed)
            for event in performed.events:
                if event.error is not None:
                    _say(f"optdbg: op {event.index} ({event.op}): {event.summary}", sys.stderr)
                for failure in event.observer_errors:
                    _say(f"optdbg: op {event.index} ({event.op}): {failure}", sys.stderr)
        export = ExportGraph(ns.output, ns.force, ns.style, f"after {' '.join(words)}")
        outcome = debugger.execute(export)
    if not isinstance(outcome, Exported):
        return _internal_error(outcome)
    if outcome.problem == "no-loss":
        print(
            f"optdbg: no graph to export: the ops {ns.ops!r} left no loss "
            "(the graph is that of the last forward: include f)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if outcome.problem in ("no-graph", "failed"):
        _say(f"optdbg: {outcome.message.removeprefix('export failed: ')}", sys.stderr)
        return EXIT_USAGE
    if outcome.problem == "not-rendered":
        _say(f"optdbg: {outcome.message}", sys.stderr)
        return EXIT_WARNINGS
    _say(outcome.message, sys.stdout)
    return EXIT_OK
