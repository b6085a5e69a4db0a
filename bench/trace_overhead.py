"""Trace overhead: a training script's loop under the tracer against the same loop plainly.

The loop is what a user's script does on the 535k-parameter MLP (bench/scenarios/mlp_535k.py):
`optimizer.zero_grad()`, the loss `loss_fn(model(X), y)`, `loss.backward()`, `optimizer.step()`,
with the model in a local variable (the probes watch the modules a script names). Traced, it runs
inside an installed `Tracer` exactly as `optdbg trace --quiet` runs a script (no records
built), and again with records (what `--json` builds for every op, written to nowhere).
Plain and traced blocks alternate (ABBA) in one process; the ratio is taken per pair of
blocks and the median reported. The script's start-up (import torch, building the model) is
the same with and without optdbg and is left out.
"""

from __future__ import annotations

import runpy
from typing import Any

from .common import MLP, interleaved, median, perf


class _Loop:
    def __init__(self) -> None:
        import torch

        torch.manual_seed(0)
        ns = runpy.run_path(MLP)
        self.model, self.loss_fn, self.optimizer = ns["model"], ns["loss_fn"], ns["optimizer"]
        self.data = ns["X"], ns["y"]

    def block(self, n: int) -> float:
        # the script's own variables: the tracer finds the model here, as in a script, and
        # the probes watch its modules (its ReLUs for dead-relu)
        model, loss_fn, optimizer = self.model, self.loss_fn, self.optimizer
        X, y = self.data
        start = perf()
        for _ in range(n):
            optimizer.zero_grad()
            loss = loss_fn(model(X), y)
            loss.backward()
            optimizer.step()
        return (perf() - start) / n


def _traced(loop: _Loop, n: int, records: bool) -> float:
    from optdbg.engine.trace import Tracer

    with Tracer(records=records):
        return loop.block(n)


def measure(rounds: int, n: int) -> dict[str, Any]:
    plain, traced = _Loop(), _Loop()
    plain.block(3)
    _traced(traced, 3, False)
    quiet_p, quiet_t = interleaved(
        lambda: plain.block(n), lambda: _traced(traced, n, False), rounds
    )
    json_p, json_t = interleaved(lambda: plain.block(n), lambda: _traced(traced, n, True), rounds)
    quiet = [t / p for p, t in zip(quiet_p, quiet_t, strict=True)]
    rec = [t / p for p, t in zip(json_p, json_t, strict=True)]
    return {
        "rounds": rounds,
        "iterations_per_block": n,
        "plain_iter_s": median(quiet_p + json_p),
        "quiet_iter_s": median(quiet_t),
        "records_iter_s": median(json_t),
        "ratio": median(quiet),
        "ratio_min": min(quiet),
        "ratio_max": max(quiet),
        "records_ratio": median(rec),
    }


def run(quick: bool = False) -> dict[str, Any]:
    return {"mlp": measure(2 if quick else 8, 3 if quick else 40)}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
