"""The TUI under Pilot (headless): key press to updated screen, and continuous running.

`BenchApp` is the real OptDbgApp with two timestamps added and nothing else changed: when a
job's view has been applied to the panels (`_apply`), and when the compositor produced a
frame (`_display`, called with each screen update even headless, where only the final write
to the terminal is skipped).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import BOWL, MLP, median, percentile, perf

SIZE = (160, 48)
"""Big enough that every panel is on screen at once (the heaviest layout)."""


def app_class() -> type[Any]:
    from optdbg.tui.app import OptDbgApp

    class BenchApp(OptDbgApp):
        CSS_PATH = str(Path(inspect.getfile(OptDbgApp)).parent / str(OptDbgApp.CSS_PATH))

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.bench_applied: list[tuple[float, int]] = []
            self.bench_apply_s: list[float] = []
            self.bench_frames: list[float] = []
            self.bench_frames_cpu: list[float] = []

        def _apply(self, view: Any) -> None:
            t0 = perf()
            super()._apply(view)
            t1 = perf()
            self.bench_applied.append((t1, view.snapshot.op_count))
            self.bench_apply_s.append(t1 - t0)

        def _display(self, screen: Any, renderable: Any) -> None:
            super()._display(screen, renderable)
            if renderable is not None:
                self.bench_frames.append(perf())
                self.bench_frames_cpu.append(time.process_time())

    return BenchApp


async def wait_until(
    app: Any, pred: Callable[[], bool], timeout: float = 120.0, step: float = 0.002
) -> None:
    deadline = perf() + timeout
    while not pred():
        if not app.is_running:
            raise RuntimeError("the app stopped")
        if perf() > deadline:
            raise TimeoutError("the app did not get there in time")
        await asyncio.sleep(step)


def frame_index(frames: list[float], t: float) -> int | None:
    """The index of the first frame at or after time t."""
    found = None
    for i in range(len(frames) - 1, -1, -1):
        if frames[i] < t:
            break
        found = i
    return found


def frame_after(frames: list[float], t: float) -> float | None:
    """The time of the first frame at or after time t."""
    i = frame_index(frames, t)
    return None if i is None else frames[i]


def has_continue() -> bool:
    """True when the app binds `c` (continuous running, being built in tui/app.py)."""
    from optdbg.tui.app import OptDbgApp

    return any(getattr(b, "key", None) == "c" for b in OptDbgApp.BINDINGS)


def send_key(app: Any, key: str) -> None:
    """Post a key event the way Pilot does, without Pilot's wait for an idle process."""
    from textual import events

    event = events.Key(key, key)
    event.set_sender(app)
    app._driver.send_message(event)


# --------------------------------------------------------------------------- latency


async def _latency(spec: str, presses: int) -> dict[str, Any]:
    from optdbg.engine import Session

    app = app_class()(Session.open(spec))
    applied: list[float] = []
    framed: list[float] = []
    cpu: list[float] = []
    per_op: dict[str, list[float]] = {}
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(app, lambda: len(app.bench_applied) >= 1)
        await pilot.pause()
        warm = 4
        apply0 = len(app.bench_apply_s) + warm
        for i in range(warm + presses):
            key = "fbsz"[i % 4]
            n0 = len(app.bench_applied)
            t0, cpu0 = perf(), time.process_time()
            await pilot.press(key)
            await wait_until(app, lambda n0=n0: len(app.bench_applied) > n0)
            t_applied = app.bench_applied[n0][0]
            await wait_until(
                app, lambda t=t_applied: frame_index(app.bench_frames, t) is not None, 10
            )
            k = frame_index(app.bench_frames, t_applied)
            assert k is not None
            t_frame, cpu_frame = app.bench_frames[k], app.bench_frames_cpu[k]
            await pilot.pause()
            if i >= warm:
                applied.append(t_applied - t0)
                framed.append(t_frame - t0)
                cpu.append(cpu_frame - cpu0)
                per_op.setdefault(key, []).append(t_frame - t0)
    return {
        "scenario": spec,
        "presses": presses,
        "keys": "f b s z repeated",
        "to_applied_p50_s": percentile(applied, 50),
        "to_applied_p95_s": percentile(applied, 95),
        "p50_s": percentile(framed, 50),
        "p95_s": percentile(framed, 95),
        "max_s": max(framed),
        "cpu_p50_s": percentile(cpu, 50),
        "cpu_p95_s": percentile(cpu, 95),
        "per_key_p50_s": {k: median(v) for k, v in per_op.items()},
        "apply_p50_s": median(app.bench_apply_s[apply0:]),
    }


async def _rhythm(spec: str, interval: float, presses: int) -> dict[str, Any]:
    """`i` pressed every `interval` seconds, as a person does, whether or not the previous
    one is done: for each key, the time from the press to the first frame that shows its
    iteration (a frame showing a later one counts: intermediate frames may be dropped)."""
    from optdbg.engine import Session

    app = app_class()(Session.open(spec))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(app, lambda: len(app.bench_applied) >= 1)
        for _ in range(2):  # warm up
            n0 = len(app.bench_applied)
            await pilot.press("i")
            await wait_until(app, lambda n0=n0: len(app.bench_applied) > n0)
        await pilot.pause()
        ops0 = app.bench_applied[-1][1]
        sent: list[float] = []
        start = perf()
        for k in range(presses):
            await asyncio.sleep(max(0.0, start + k * interval - perf()))
            sent.append(perf())
            send_key(app, "i")
        target = ops0 + 4 * presses
        await wait_until(app, lambda: app.bench_applied[-1][1] >= target)
        await wait_until(
            app, lambda: frame_index(app.bench_frames, app.bench_applied[-1][0]) is not None, 10
        )
        latencies = []
        for k, t0 in enumerate(sent):
            want = ops0 + 4 * (k + 1)
            t_applied = next(t for t, ops in app.bench_applied if ops >= want and t >= t0)
            frame = frame_after(app.bench_frames, t_applied)
            assert frame is not None
            latencies.append(frame - t0)
    return {
        "scenario": spec,
        "keys_per_s": 1 / interval,
        "presses": presses,
        "p50_s": percentile(latencies, 50),
        "max_s": max(latencies),
        "first_s": latencies[0],
        "last_s": latencies[-1],
        "latencies_s": latencies,
    }


# --------------------------------------------------------------------------- throughput


def _plain_loop(spec: str) -> Callable[[int], float]:
    from optdbg.engine.scenario import load

    scenario = load(spec)
    fwd, opt = scenario.namespace["forward"], scenario.optimizer

    def block(n: int) -> float:
        start = perf()
        for _ in range(n):
            loss = fwd()
            loss.backward()
            opt.step()
            opt.zero_grad()
        return n / (perf() - start)

    return block


async def _tui_iterations(app: Any, n: int) -> float:
    """Iterations per second pressing `i` as fast as the app takes them (2 kept queued)."""
    ops0 = app.bench_applied[-1][1]
    sent = 0
    t0 = perf()
    while True:
        done = (app.bench_applied[-1][1] - ops0) // 4  # queued keys may share one frame
        if done >= n:
            break
        while sent < n and sent - done < 2:
            send_key(app, "i")
            sent += 1
        await asyncio.sleep(0.001)
    return n / (app.bench_applied[-1][0] - t0)


async def _tui_continue(app: Any, seconds: float) -> tuple[float, str]:
    """Iterations per second in continuous running: `c` starts it, any key pauses it.
    Returns the rate and how the run ended ("paused" by the bench, or the app's note)."""
    session = app.session
    steps0, notes0 = session.step_count, len(app._notifications)
    t0 = perf()
    send_key(app, "c")
    running = False
    while perf() - t0 < seconds:
        await asyncio.sleep(0.02)
        busy = app.busy
        running = running or busy
        if running and not busy:
            break  # stopped by itself (a breakpoint or a warning)
    steps1, t1 = session.step_count, perf()
    ended = "paused"
    if app.busy:
        send_key(app, "c")  # any key pauses
    else:
        notes = [str(n.message) for n in list(app._notifications)[notes0:]]
        ended = "stopped: " + (notes[-1] if notes else "?")[:120]
    try:
        await wait_until(app, lambda: not app.busy, 5)
    except TimeoutError:  # the run stopped itself just as `c` was sent, and `c` began another
        send_key(app, "c")
        await wait_until(app, lambda: not app.busy, 60)
    return (steps1 - steps0) / (t1 - t0), ended


async def _throughput(spec: str, rounds: int, n: int, seconds: float) -> dict[str, Any]:
    from optdbg.engine import Session

    plain = _plain_loop(spec)
    plain(2)
    app = app_class()(Session.open(spec))
    mode = "continue" if has_continue() else "i-keys"
    plain_rates: list[float] = []
    tui_rates: list[float] = []
    endings: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(app, lambda: len(app.bench_applied) >= 1)
        await _tui_iterations(app, 2)  # warm up
        for r in range(rounds):
            if r % 2 == 0:
                plain_rates.append(plain(n))
            if mode == "continue":
                rate, ended = await _tui_continue(app, seconds)
                tui_rates.append(rate)
                endings.append(ended)
            else:
                tui_rates.append(await _tui_iterations(app, n))
            await pilot.pause()
            if r % 2 == 1:
                plain_rates.append(plain(n))
    plain_rate, tui_rate = median(plain_rates), median(tui_rates)
    return {
        "scenario": spec,
        "mode": mode,
        "plain_it_per_s": plain_rate,
        "tui_it_per_s": tui_rate,
        "ratio": tui_rate / plain_rate,
        "rounds": rounds,
        "iterations_per_round": n if mode != "continue" else None,
        "seconds_per_round": seconds if mode == "continue" else None,
        "endings": endings,
    }


def run(quick: bool = False) -> dict[str, Any]:
    presses = 4 if quick else 40
    out: dict[str, Any] = {
        "latency_bowl": asyncio.run(_latency(BOWL, presses)),
        "latency_mlp": asyncio.run(_latency(MLP, 4 if quick else 24)),
    }
    out["apply_bowl_s"] = out["latency_bowl"]["apply_p50_s"]
    out["apply_mlp_s"] = out["latency_mlp"]["apply_p50_s"]
    out["rhythm_2"] = asyncio.run(_rhythm(MLP, 0.5, 3 if quick else 16))
    out["rhythm_4"] = asyncio.run(_rhythm(MLP, 0.25, 4 if quick else 24))
    rounds = 2 if quick else 4
    seconds = 0.5 if quick else 2.0  # per round of continuous running
    out["throughput_bowl"] = asyncio.run(_throughput(BOWL, rounds, 5 if quick else 60, seconds))
    out["throughput_mlp"] = asyncio.run(_throughput(MLP, rounds, 2 if quick else 12, seconds))
    return out
