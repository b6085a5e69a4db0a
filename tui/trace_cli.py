"""`optdbg trace`: debug an unmodified training script; headless here (never imports textual)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from optdbg.engine.trace.tracer import TracedOp, Tracer

EXIT_WARNINGS, EXIT_USAGE = 1, 2


def trace_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optdbg trace",
        description=(
            "Run a training script as `python SCRIPT ARGS` would, with its own backward(), "
            "step() and zero_grad() calls as the ops: the TUI pauses before each one; "
            "--json, --quiet or --json-dir run it headless. optdbg's options come before "
            "SCRIPT; everything after SCRIPT is the script's."
        ),
    )
    out = parser.add_mutually_exclusive_group()
    out.add_argument(
        "--json",
        action="store_true",
        help="one JSON record per op on stdout (the script's own output goes to stderr)",
    )
    out.add_argument("--quiet", action="store_true", help="only a one-line summary at the end")
    out.add_argument(
        "--json-dir",
        metavar="DIR",
        help="write the records to DIR/trace.jsonl (DIR/rank<N>.jsonl per rank under torchrun)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 1 when a pitfall warning fired (else the script's own status)",
    )
    parser.add_argument(
        "--max-ops", type=int, metavar="N", help="stop the script when it starts its op N+1"
    )
    parser.add_argument(
        "--silence",
        action="append",
        default=[],
        metavar="CODE[,CODE]",
        help="never report these pitfall codes (repeatable)",
    )
    parser.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a detector threshold (the README's pitfall table lists them), e.g. "
        "plateau_patience=100 (repeatable)",
    )
    parser.add_argument("script", metavar="SCRIPT", help="the training script (a .py file)")
    parser.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="its arguments")
    return parser


def trace_command(argv: list[str]) -> int:
    parser = trace_parser()
    ns = parser.parse_args(argv)
    if ns.max_ops is not None and ns.max_ops < 1:
        parser.error("--max-ops must be at least 1")
    ns.thresholds = _thresholds(parser, ns)
    from optdbg.engine.trace.check import ScriptError, check_script

    try:
        path = check_script(ns.script)
    except ScriptError as e:
        print(f"optdbg trace: cannot run the script: {e}", file=sys.stderr)
        return EXIT_USAGE
    if not (ns.json or ns.quiet or ns.json_dir):
        from optdbg.engine.trace.tracer import env_rank

        rank = env_rank()
        if rank is not None and rank != 0:
            return _follower(ns, path, rank)
        from .trace_app import open_trace_tui

        note = None
        if rank is not None:
            world = int(os.environ.get("WORLD_SIZE", "2"))
            others = "rank 1 runs" if world == 2 else f"ranks 1-{world - 1} run"
            note = (
                f"this is rank 0 of {world}: {others} headless, unpaused, with output and "
                f"records in {follower_dir()}"
            )
        return open_trace_tui(
            path, ns.args, max_ops=ns.max_ops, thresholds=ns.thresholds, rank=rank, note=note
        )
    return _headless(ns, path)


def follower_dir() -> Path:
    """Where the ranks other than 0 write their output and records when rank 0 has the TUI."""
    run = f"{os.environ.get('MASTER_ADDR', 'local')}-{os.environ.get('MASTER_PORT', '0')}"
    return Path(tempfile.gettempdir()) / f"optdbg-trace-{run}"


def _follower(ns: argparse.Namespace, path: Path, rank: int) -> int:
    """A rank other than 0 when the TUI was asked for: it runs headless and unpaused (rank 0's
    TUI follows rank 0), its output in DIR/rank<N>.log (not over rank 0's screen) and its
    records in DIR/rank<N>.jsonl."""
    folder = follower_dir()
    folder.mkdir(parents=True, exist_ok=True)
    ns.json_dir = str(folder)
    sys.stdout.flush()
    sys.stderr.flush()
    with open(folder / f"rank{rank}.log", "wb") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    return _headless(ns, path)


def _headless(ns: argparse.Namespace, path: Path) -> int:
    from optdbg.engine.trace.script import run_script
    from optdbg.engine.trace.tracer import Tracer, env_rank

    rank = env_rank()
    with _records_out(ns, rank) as out:

        def write(traced: TracedOp) -> None:
            record = traced.final_record()
            if out is not None and record is not None:
                line = json.dumps(record, default=_json_value) + "\n"
                out.write(line.encode())  # one write per record: whole lines under torchrun
                out.flush()

        tracer = Tracer(
            records=out is not None,
            rank=rank,
            max_ops=ns.max_ops,
            on_final=write,
            thresholds=ns.thresholds,
        )
        status = run_script(path, ns.args, tracer)
    _report(ns, tracer, path)
    if ns.strict and tracer.warned() and status == 0:
        return EXIT_WARNINGS
    return status


@contextlib.contextmanager
def _records_out(ns: argparse.Namespace, rank: int | None) -> Iterator[BinaryIO | None]:
    """Where records go. With --json, stdout; the script's own stdout (file descriptor 1,
    so its subprocesses too) goes to stderr meanwhile."""
    if ns.json_dir:
        folder = Path(ns.json_dir)
        folder.mkdir(parents=True, exist_ok=True)
        name = "trace.jsonl" if rank is None else f"rank{rank}.jsonl"
        with open(folder / name, "wb") as f:
            yield f
        return
    if not ns.json:
        yield None
        return
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with os.fdopen(os.dup(saved), "wb", buffering=0) as f:
            yield f
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _thresholds(parser: argparse.ArgumentParser, ns: argparse.Namespace) -> Any:
    """The detectors' Thresholds from --silence and --threshold (a usage error names the
    bad one and what is allowed)."""
    from optdbg.engine.pitfalls import Thresholds

    config: dict[str, Any] = {}
    codes = [c.strip() for arg in ns.silence for c in arg.split(",") if c.strip()]
    if codes:
        config["silence"] = codes
    names = [n for n in Thresholds.__dataclass_fields__ if n != "silence"]
    for item in ns.threshold:
        name, eq, value = item.partition("=")
        name = name.strip()
        if not eq or name not in names:
            parser.error(
                f"--threshold {item}: expected NAME=VALUE with NAME one of {', '.join(names)}"
            )
        try:
            config[name] = float(value) if "." in value or "e" in value.lower() else int(value)
        except ValueError:
            parser.error(f"--threshold {item}: {value!r} is not a number")
    try:
        return Thresholds.from_config(config)
    except ValueError as e:
        parser.error(str(e))


def _report(ns: argparse.Namespace, tracer: Tracer, path: Path) -> None:
    """optdbg's own lines at the end, on stderr (stdout is the script's, or the records)."""
    if tracer.stopped is not None:
        print(f"optdbg trace: stopped the script ({tracer.stopped})", file=sys.stderr)
    if not tracer.events:
        print(
            f"optdbg trace: {path.name} ran without calling backward(), an optimizer's step() "
            "or zero_grad(): no op was seen",
            file=sys.stderr,
        )
    if tracer.ddp is not None and tracer.ddp.error is not None:
        print(
            f"optdbg trace: the ranks could not all be compared: {tracer.ddp.error}",
            file=sys.stderr,
        )
    if ns.quiet:
        print(tracer.summary_line(path.name), file=sys.stderr)


def _json_value(value: object) -> Any:
    if isinstance(value, complex):
        return [value.real, value.imag]
    return str(value)
