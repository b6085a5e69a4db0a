"""Scale: one 10^8-element parameter with Adam, and a ~10M-parameter transformer LM.

Each case runs in a fresh process per mode, so each peak memory is its own:

- `plain`: the plain loop (forward, `loss.backward()`, `optimizer.step()`,
  `optimizer.zero_grad()`), each op timed;
- `run`: the same ops through a Session, as `optdbg run --quiet` performs them, then one undo;
- `tui`: the real app under Pilot (160x48): each key (`f b s z`, twice, then `u`) timed
  from the key press to the first frame showing its result.

    .venv/bin/python -m bench.big --case adam --mode tui [--device cuda] [--quick]

prints one JSON object. On CUDA the peak is also torch's `max_memory_allocated`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from typing import Any

from .common import HERE, SCENARIOS, median, perf
from .memory import rss_mb

CASES = {"adam": str(SCENARIOS / "adam_1e8.py"), "lm": str(SCENARIOS / "tiny_lm.py")}
KEYS = ("f", "b", "s", "z")
OPS = ("forward", "backward", "step", "zero_grad")
ROUNDS = 2


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _gpu_peak_mb() -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.max_memory_allocated() / 2**20


def _plain(spec: str) -> dict[str, Any]:
    from optdbg.engine.scenario import load

    scenario = load(spec)
    fwd, opt = scenario.namespace["forward"], scenario.optimizer
    times: dict[str, list[float]] = {op: [] for op in OPS}
    loss = None

    def timed(op: str, call: Any) -> Any:
        _sync()
        t0 = perf()
        result = call()
        _sync()
        times[op].append(perf() - t0)
        return result

    for _ in range(ROUNDS):
        loss = timed("forward", fwd)
        timed("backward", loss.backward)
        timed("step", opt.step)
        timed("zero_grad", opt.zero_grad)
    return {"op_s": {op: median(v) for op, v in times.items()}}


def _run(spec: str) -> dict[str, Any]:
    from optdbg.engine import Session

    session = Session.open(spec)
    session.step_detail = False  # as `optdbg run` sets it
    session.summary_values = False  # as `--quiet` sets it
    times: dict[str, list[float]] = {op: [] for op in OPS}
    for _ in range(ROUNDS):
        for key, op in zip(KEYS, OPS, strict=True):
            t0 = perf()
            (event,) = session.perform(key)
            _sync()
            times[op].append(perf() - t0)
            if event.error is not None:
                raise SystemExit(f"{op} failed: {event.summary}")
    t0 = perf()
    session.undo()
    _sync()
    undo = perf() - t0
    return {"op_s": {op: median(v) for op, v in times.items()}, "undo_s": undo}


async def _tui(spec: str) -> dict[str, Any]:
    from optdbg.engine import Session

    from .tui_bench import SIZE, app_class, frame_index, wait_until

    app = app_class()(Session.open(spec))
    times: dict[str, list[float]] = {op: [] for op in OPS}
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(app, lambda: len(app.bench_applied) >= 1, 600)
        await pilot.pause()

        async def key_to_frame(key: str) -> float:
            n0 = len(app.bench_applied)
            t0 = perf()
            await pilot.press(key)
            await wait_until(app, lambda: len(app.bench_applied) > n0, 600)
            t_applied = app.bench_applied[n0][0]
            await wait_until(app, lambda: frame_index(app.bench_frames, t_applied) is not None)
            k = frame_index(app.bench_frames, t_applied)
            assert k is not None
            return float(app.bench_frames[k] - t0)

        for _ in range(ROUNDS):
            for key, op in zip(KEYS, OPS, strict=True):
                times[op].append(await key_to_frame(key))
        undo = await key_to_frame("u")
        ops = app.session.snapshot().op_count if app.session is not None else None
    return {"op_s": {op: median(v) for op, v in times.items()}, "undo_s": undo, "ops": ops}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.big")
    parser.add_argument("--case", choices=sorted(CASES), required=True)
    parser.add_argument("--mode", choices=("plain", "run", "tui"), required=True)
    ns = parser.parse_args(argv)
    spec = CASES[ns.case]
    t0 = perf()
    if ns.mode == "plain":
        out = _plain(spec)
    elif ns.mode == "run":
        out = _run(spec)
    else:
        out = asyncio.run(_tui(spec))
    out.update(
        case=ns.case,
        mode=ns.mode,
        device=os.environ.get("OPTDBG_BENCH_DEVICE", "cpu"),
        seconds=perf() - t0,
        peak_rss_mb=rss_mb(),
        gpu_peak_mb=_gpu_peak_mb(),
    )
    print(json.dumps(out))
    return 0


def measure(case: str, mode: str, device: str, quick: bool) -> dict[str, Any]:
    env = dict(os.environ, OPTDBG_BENCH_DEVICE=device)
    if quick:
        env.update(OPTDBG_BENCH_NUMEL=str(10**6), OPTDBG_BENCH_LM_LAYERS="1")
    cmd = [sys.executable, "-m", "bench.big", "--case", case, "--mode", mode]
    done = subprocess.run(
        cmd, cwd=HERE.parent, env=env, capture_output=True, text=True, check=False, timeout=1800
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def devices() -> list[str]:
    import torch

    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def run(quick: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"numel": 10**6 if quick else 10**8, "gpu": "cuda" in devices()}
    for device in devices():
        for case in CASES:
            modes = ("plain", "tui") if quick else ("plain", "run", "tui")
            out[f"{case}_{device}"] = {mode: measure(case, mode, device, quick) for mode in modes}
    return out


if __name__ == "__main__":
    sys.exit(main())
