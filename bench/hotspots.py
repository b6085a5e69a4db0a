"""Where the time goes: cProfile of what misses its target, written to bench/hotspots.md.

(Named hotspots, not profile: a bench/profile.py would shadow the standard library's
`profile`, which cProfile imports, when a script in bench/ runs with bench/ on sys.path.)

    .venv/bin/python -m bench.hotspots [--quick] [--out DIR]

Four cases, each profiled per thread (cProfile sees one thread; the engine thread's share is
profiled by wrapping the app's torch work, `Session.perform`/`run_until` and
`OptDbgApp._capture`, the UI thread's by profiling the event loop):

1. the engine alone, `optdbg run --quiet` loop on the MLP;
2. key presses in the TUI on the MLP (`f b s z`);
3. continuous running (`c`) in the TUI on the MLP;
4. one key press in the TUI on the deep MLP (400 parameters, 1,001 graph nodes).

Each table lists the functions with the most time of their own (`tottime`) and the calls
that contain the most (`cumtime`), as a percentage of that thread's profiled time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import time
from pathlib import Path
from typing import Any

from .common import DEEP, HERE, MLP, perf
from .tui_bench import SIZE, app_class, frame_index, send_key, wait_until

_PREFIXES = (
    "/build/__editable__.optdbg-0.1.0-py3-none-any/optdbg/",
    "/site-packages/",
    "/lib/python3.11/",
)


def _where(func: tuple[str, int, str]) -> str:
    file, line, name = func
    for prefix in _PREFIXES:
        if prefix in file:
            file = file.split(prefix, 1)[1]
            break
    else:
        file = file.rsplit("/", 2)[-1] if file.startswith("/") else file
    return f"{file}:{line}({name})" if line else name


def top(profile: cProfile.Profile, n: int = 12) -> dict[str, Any]:
    stats = pstats.Stats(profile)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = max(stats.total_tt, 1e-9)  # type: ignore[attr-defined]
    own = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:n]
    cum = sorted(raw.items(), key=lambda kv: kv[1][3], reverse=True)
    skip = ("asyncio/", "textual/_callback", "message_pump", "{method 'run'", "events.py")
    cum = [kv for kv in cum if not any(s in _where(kv[0]) for s in skip)][:n]
    return {
        "total_s": total,
        "own": [(_where(f), v[1], v[2], 100 * v[2] / total) for f, v in own],
        "cumulative": [(_where(f), v[1], v[3], 100 * v[3] / total) for f, v in cum],
    }


# --------------------------------------------------------------------------- cases


def engine_loop(iterations: int) -> dict[str, Any]:
    from optdbg.engine import Session

    session = Session.open(MLP)
    for _ in range(5):
        session.perform("i")
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(iterations):
        session.perform("i")
    profile.disable()
    return {"engine thread": top(profile)}


class _Threads:
    """cProfile for the engine thread's work (the app's torch jobs) and the UI thread."""

    def __init__(self) -> None:
        from optdbg.engine.debugger.facade import Debugger

        self.engine = cProfile.Profile()
        self.ui = cProfile.Profile()
        self._execute = Debugger.execute
        execute, profile = self._execute, self.engine
        depth = [0]  # a command may run another: profile the outermost call only

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            depth[0] += 1
            if depth[0] == 1:
                profile.enable()
            try:
                return execute(*args, **kwargs)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    profile.disable()

        Debugger.execute = wrapped  # type: ignore[method-assign]  # every engine job's command

    def restore(self) -> None:
        from optdbg.engine.debugger.facade import Debugger

        Debugger.execute = self._execute  # type: ignore[method-assign]

    def result(self) -> dict[str, Any]:
        return {"engine thread": top(self.engine), "UI thread": top(self.ui)}


async def _keys(spec: str, keys: str) -> dict[str, Any]:
    from optdbg.engine import Session

    session = Session.open(spec)
    threads = _Threads()
    try:
        app = app_class()(session)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(app, lambda: len(app.bench_applied) >= 1, 600)
            await pilot.pause()
            threads.ui.enable()
            for key in keys:
                n0 = len(app.bench_applied)
                await pilot.press(key)
                await wait_until(app, lambda n0=n0: len(app.bench_applied) > n0, 600)
                t = app.bench_applied[n0][0]
                await wait_until(app, lambda t=t: frame_index(app.bench_frames, t) is not None, 600)
                await pilot.pause()
            threads.ui.disable()
    finally:
        threads.restore()
    return threads.result()


async def _continue(spec: str, seconds: float) -> dict[str, Any]:
    from optdbg.engine import Session

    session = Session.open(spec)
    threads = _Threads()
    try:
        app = app_class()(session)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(app, lambda: len(app.bench_applied) >= 1)
            await pilot.pause()
            steps0, t0 = session.step_count, perf()
            threads.ui.enable()
            send_key(app, "c")
            await asyncio.sleep(seconds)
            send_key(app, "c")
            await wait_until(app, lambda: not app.busy, 60)
            threads.ui.disable()
            rate = (session.step_count - steps0) / (perf() - t0)
    finally:
        threads.restore()
    return {**threads.result(), "iterations_per_s": rate}


def run(quick: bool = False) -> dict[str, Any]:

    cases: dict[str, Any] = {}
    t0 = time.perf_counter()
    cases["engine alone: `run --quiet` loop, MLP"] = engine_loop(5 if quick else 40)
    cases["TUI key presses `f b s z`, MLP"] = asyncio.run(_keys(MLP, "fbsz" * (1 if quick else 3)))
    cases["TUI continuous running (`c`), MLP"] = asyncio.run(_continue(MLP, 1 if quick else 6))
    cases["TUI key press `f`, deep MLP (400 parameters)"] = asyncio.run(_keys(DEEP, "f"))
    return {"cases": cases, "seconds": time.perf_counter() - t0}


def report(result: dict[str, Any]) -> str:
    lines = [
        "# Where the time goes (cProfile, `python -m bench.hotspots`)",
        "",
        "Percentages are of the thread's profiled time (cProfile's overhead inflates Python",
        "code relative to torch kernels; compare rows within a table).",
    ]
    for case, threads in result["cases"].items():
        lines += ["", f"## {case}", ""]
        if "iterations_per_s" in threads:
            lines += [f"{threads['iterations_per_s']:.2f} iterations/s while profiled.", ""]
        for thread, t in threads.items():
            if thread == "iterations_per_s":
                continue
            lines += [f"**{thread}**: {t['total_s']:.2f} s profiled", ""]
            lines += ["| own time | % | calls | function |", "|---|---|---|---|"]
            lines += [f"| {s:.3f} s | {p:.1f} | {n} | `{f}` |" for f, n, s, p in t["own"]]
            lines += ["", "| inclusive | % | calls | function |", "|---|---|---|---|"]
            lines += [f"| {s:.3f} s | {p:.1f} | {n} | `{f}` |" for f, n, s, p in t["cumulative"]]
            lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hotspots")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE)
    ns = parser.parse_args(argv)
    text = report(run(ns.quick))
    print(text)
    ns.out.mkdir(parents=True, exist_ok=True)
    (ns.out / "hotspots.md").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
