"""Run a user's script as `python SCRIPT ARGS` would, under a tracer."""

from __future__ import annotations

import os
import runpy
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from .naming import _library
from .tracer import Tracer, TraceStopped

EXIT_INTERRUPTED = 130


@contextmanager
def _as_main(path: Path, args: list[str]) -> Iterator[None]:
    """sys.argv and sys.path[0] as `python SCRIPT ARGS` sets them, restored afterwards."""
    argv, path0 = sys.argv, sys.path[0] if sys.path else None
    sys.argv = [str(path), *args]
    folder = str(path if path.is_dir() else path.parent.absolute())
    if sys.path:
        sys.path[0] = folder
    else:
        sys.path.insert(0, folder)
    try:
        yield
    finally:
        sys.argv = argv
        if path0 is not None and sys.path:
            sys.path[0] = path0


def run_script(path: Path, args: list[str], tracer: Tracer) -> int:
    """Run the script under the tracer; its exit status, as Python would give it.

    The script's own uncaught exception is printed as Python prints it, without optdbg's
    frames; Ctrl-C gives 130; a stop asked by the tracer (--max-ops, q) gives 0."""
    with _as_main(path, args):
        try:
            with tracer:
                runpy.run_path(str(path), run_name="__main__")
        except SystemExit as e:
            return _exit_status(e.code)
        except TraceStopped:
            return 0
        except KeyboardInterrupt as e:
            _print_exception(e)
            return EXIT_INTERRUPTED
        except BaseException as e:
            _print_exception(e)
            return 1
        finally:
            sys.stdout.flush()
    return 0


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _print_exception(e: BaseException) -> None:
    sys.stdout.flush()
    _strip(e, set())
    traceback.print_exception(e)
    sys.stderr.flush()


def _strip(e: BaseException, seen: set[int]) -> None:
    """Drop optdbg's and runpy's frames from the traceback (and from chained exceptions)."""
    if id(e) in seen:
        return
    seen.add(id(e))
    frames = []
    tb = e.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if not (_library(name) and not _is_torch(name)):
            frames.append(tb)
        tb = tb.tb_next
    rebuilt: TracebackType | None = None
    for tb in reversed(frames):
        rebuilt = TracebackType(rebuilt, tb.tb_frame, tb.tb_lasti, tb.tb_lineno)
    e.__traceback__ = rebuilt
    for other in (e.__cause__, e.__context__):
        if other is not None:
            _strip(other, seen)


def _is_torch(filename: str) -> bool:
    import torch

    return filename.startswith(os.path.dirname(torch.__file__) + os.sep)
