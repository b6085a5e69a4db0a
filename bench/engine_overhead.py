"""Engine overhead: the Session (default settings: detectors and history on) against a plain
PyTorch loop on the same scenario, per op and per iteration.

The engine side is what `optdbg run SCENARIO --ops "f b s z" --repeat N --quiet` does after
start-up: `session.perform(word)` for each op word, the events collected in a list, one
snapshot for the summary line at the end. The plain side calls the scenario's own
`forward`, then `loss.backward()`, `optimizer.step()`, `optimizer.zero_grad()`. Both are
loaded from the same file after the same seed, and run in alternating blocks (ABBA) so a
change in the shared machine's load hits both alike; the ratio is taken per pair of
blocks and the median reported.
"""

from __future__ import annotations

import os
from typing import Any

from .common import BOWL, LINREG, MLP, interleaved, median, perf

WORDS = ("f", "b", "s", "z")
OPS = ("forward", "backward", "step", "zero_grad")


class _Plain:
    def __init__(self, spec: str) -> None:
        from optdbg.engine.scenario import load

        scenario = load(spec)
        ns = scenario.namespace
        self.forward = ns["forward"]
        self.optimizer = scenario.optimizer
        self.op_times: list[list[float]] = [[], [], [], []]

    def block(self, n: int) -> float:
        fwd, opt, times = self.forward, self.optimizer, self.op_times
        start = perf()
        for _ in range(n):
            t0 = perf()
            loss = fwd()
            t1 = perf()
            loss.backward()
            t2 = perf()
            opt.step()
            t3 = perf()
            opt.zero_grad()
            t4 = perf()
            times[0].append(t1 - t0)
            times[1].append(t2 - t1)
            times[2].append(t3 - t2)
            times[3].append(t4 - t3)
        return (perf() - start) / n


class _Engine:
    """The `optdbg run --quiet` loop, in process (`json=True`: `optdbg run --json`, each
    op's record made and written as the CLI does, to a sink that keeps no text)."""

    def __init__(self, spec: str, json: bool = False) -> None:
        from optdbg.engine import Session
        from optdbg.engine.report import json_line

        self.session = Session.open(spec)
        self.session.step_detail = False  # as `optdbg run` sets it
        self.session.summary_values = False  # as `--quiet` and `--json` set it
        self.events: list[Any] = []
        self.op_times: list[list[float]] = [[], [], [], []]
        self.json_line = json_line if json else None
        self.sink = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (lives with self)

    def block(self, n: int) -> float:
        session, events, times, line = self.session, self.events, self.op_times, self.json_line
        start = perf()
        for _ in range(n):
            for k, word in enumerate(WORDS):
                t0 = perf()
                for event in session.perform(word):
                    events.append(event)
                    if line is not None:
                        print(line(event, session), file=self.sink, flush=True)
                times[k].append(perf() - t0)
        return (perf() - start) / n

    def finish(self) -> tuple[float, str]:
        from optdbg.engine.report import summary_line

        t0 = perf()
        line = summary_line(self.events, self.session.snapshot())
        return perf() - t0, line


def measure(spec: str, rounds: int, block_seconds: float) -> dict[str, Any]:
    plain, engine = _Plain(spec), _Engine(spec)
    # warm up both (allocator, lazy imports, first checkpoints), then size the blocks so
    # that an engine block takes about block_seconds
    plain.block(3)
    per_iter = engine.block(3)
    n = max(3, min(2000, int(block_seconds / max(per_iter, 1e-6))))
    plain.op_times = [[], [], [], []]
    engine.op_times = [[], [], [], []]
    plain_iters, engine_iters = interleaved(lambda: plain.block(n), lambda: engine.block(n), rounds)
    ratios = [e / p for p, e in zip(plain_iters, engine_iters, strict=True)]
    summary_s, line = engine.finish()
    ops = {}
    for k, op in enumerate(OPS):
        p, e = median(plain.op_times[k]), median(engine.op_times[k])
        ops[op] = {"plain_s": p, "engine_s": e, "overhead_s": e - p, "ratio": e / p}
    errors = sum(1 for ev in engine.events if ev.error is not None)
    history = engine.session.history
    return {
        "scenario": spec,
        "rounds": rounds,
        "iterations_per_block": n,
        "plain_iter_s": median(plain_iters),
        "engine_iter_s": median(engine_iters),
        "ratio": median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "ops": ops,
        "summary_line_s": summary_s,
        "summary_line": line,
        "op_errors": errors,
        "checkpoints": len(history.checkpoints),
        "history_mb": round(history.nbytes / 2**20, 1),
    }


def json_vs_quiet(spec: str, rounds: int, block_seconds: float) -> dict[str, Any]:
    """`run --json` against `run --quiet`: two sessions on the same scenario, alternating."""
    quiet, loud = _Engine(spec), _Engine(spec, json=True)
    quiet.block(3)
    per_iter = loud.block(3)
    n = max(3, min(2000, int(block_seconds / max(per_iter, 1e-6))))
    q, j = interleaved(lambda: quiet.block(n), lambda: loud.block(n), rounds)
    ratios = [b / a for a, b in zip(q, j, strict=True)]
    return {
        "scenario": spec,
        "rounds": rounds,
        "iterations_per_block": n,
        "quiet_iter_s": median(q),
        "json_iter_s": median(j),
        "ratio": median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
    }


def run(quick: bool = False) -> dict[str, Any]:
    """MLP at torch's default threads (as users run) and at one thread; the small scenarios
    and `--json` at the default threads."""
    import torch

    rounds = 2 if quick else 8
    default = torch.get_num_threads()
    out: dict[str, Any] = {"threads": default}
    for key, spec, block in (("bowl", BOWL, 0.25), ("mlp", MLP, 0.6), ("linreg", LINREG, 0.25)):
        out[key] = measure(spec, rounds, 0.02 if quick else block)
    out["json_mlp"] = json_vs_quiet(MLP, rounds, 0.02 if quick else 0.6)
    torch.set_num_threads(1)
    try:
        out["mlp_1thread"] = measure(MLP, rounds, 0.02 if quick else 0.6)
    finally:
        torch.set_num_threads(default)
    return out
