"""Benchmark: undo history of a long run stays within a memory bound.

Runs ITERATIONS whole iterations (forward, backward, step, zero_grad) of a ~535k-parameter
MLP (784 -> 512 -> 256 -> 10, ReLU) with SGD momentum 0.9 on a fixed random batch of 256,
with undo available back to the start, and reports:

- peak RSS of the process (ru_maxrss) against the limit (default 1 GiB): exit status 1
  when it is exceeded;
- the bytes the checkpoints hold (never above the budget, `--history-mb`);
- the time per iteration, with and without history (`--baseline`);
- the latency (wall ms, CPU ms) of undo to the start, of jumping back to the end, of
  undoing one op and one iteration there, and of jumping to the middle (replay cost),
  each jump checked bit for bit against the state it must reproduce.

Usage: python bench/history_memory.py [--iterations 1500] [--history-mb 256]
       [--limit-mb 1024] [--threads N] [--json] [--baseline]
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# Run as a file, this folder comes first on sys.path, where its modules (bench/*.py) would
# shadow modules that torch imports.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import torch  # noqa: E402

SCENARIO = '''
"""MLP 784-512-256-10 with SGD momentum on a fixed random batch of 256."""
import torch
from torch import nn

X = torch.randn(256, 784)
y = torch.randint(0, 10, (256,))
model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                      nn.Linear(256, 10))
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

def forward():
    return loss_fn(model(X), y)
'''


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def state(session) -> list[torch.Tensor]:
    opt = session.optimizer
    out = []
    for g in opt.param_groups:
        for p in g["params"]:
            out.append(p.detach().clone())
            out.append(torch.empty(0) if p.grad is None else p.grad.detach().clone())
            buf = opt.state.get(p, {}).get("momentum_buffer")
            out.append(torch.empty(0) if buf is None else buf.clone())
    if session.loss is not None:
        out.append(session.loss.detach().clone())
    return out


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(
        x.shape == y.shape
        and torch.equal(x.reshape(-1).view(torch.uint8), y.reshape(-1).view(torch.uint8))
        for x, y in zip(a, b, strict=True)
    )


def ms(seconds: tuple[float, float]) -> tuple[float, float]:
    return round(1000 * seconds[0], 1), round(1000 * seconds[1], 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--history-mb", type=float, default=None)
    parser.add_argument("--limit-mb", type=float, default=1024)
    parser.add_argument("--baseline", action="store_true", help="history_mb=0: start only")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ns = parser.parse_args(argv)

    from optdbg.engine import Session

    if ns.threads is not None:
        torch.set_num_threads(ns.threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mlp_momentum.py"
        path.write_text(SCENARIO, encoding="utf-8")
        session = Session.open(path, history_mb=0 if ns.baseline else ns.history_mb)
    history = session.history
    n_params = sum(p.numel() for g in session.optimizer.param_groups for p in g["params"])
    start_state = state(session)
    rss_loaded = rss_mb()
    over_budget = 0
    t0 = time.perf_counter()
    c0 = time.process_time()
    middle = None
    for k in range(ns.iterations):
        for event in session.iteration():
            assert event.ok, event.summary
        over_budget += history.nbytes > history.budget and len(history.checkpoints) > 1
        if k == ns.iterations // 2:
            middle = (len(session.events) - 1, state(session))
    run_s = time.perf_counter() - t0
    run_cpu_s = time.process_time() - c0
    end_index = len(session.events) - 1
    end_state = state(session)

    def timed(jump: Callable[[], object]) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        jump()
        return time.perf_counter() - wall, time.process_time() - cpu

    undo_start_s = timed(lambda: session.goto(-1))
    ok_start = same(state(session), start_state)
    redo_end_s = timed(lambda: session.goto(end_index))
    ok_end = same(state(session), end_state)
    undo_one_end_s = timed(lambda: session.undo())
    session.redo()
    undo_iteration_s = timed(lambda: session.undo(4))
    session.redo(4)
    assert middle is not None
    goto_middle_s = timed(lambda: session.goto(middle[0]))
    ok_middle = same(state(session), middle[1])
    undo_one_s = timed(lambda: session.undo())
    positions = [c.position for c in history.checkpoints] + [end_index + 1]
    gaps = [(b - a, b) for a, b in itertools.pairwise(positions)]
    widest, before_next = max(gaps) if gaps else (0, 0)
    worst = (0.0, 0.0)
    if widest > 1:
        session.goto(end_index)
        worst = timed(lambda: session.goto(before_next - 2))  # replays widest - 1 ops

    peak = rss_mb()
    report = {
        "parameters": n_params,
        "threads": torch.get_num_threads(),
        "iterations": ns.iterations,
        "ops": end_index + 1,
        "history_budget_mb": history.budget / 2**20,
        "checkpoints": len(history.checkpoints),
        "checkpoint_mb": history.nbytes / 2**20,
        "checkpoint_peak_mb": history.peak_nbytes / 2**20,
        "ops_over_budget": over_budget,
        "rss_after_load_mb": round(rss_loaded, 1),
        "peak_rss_mb": round(peak, 1),
        "limit_mb": ns.limit_mb,
        "ms_per_iteration": round(1000 * run_s / ns.iterations, 2),
        "cpu_ms_per_iteration": round(1000 * run_cpu_s / ns.iterations, 2),
        "undo_to_start_ms": ms(undo_start_s),
        "goto_end_from_start_ms": ms(redo_end_s),
        "undo_one_op_at_end_ms": ms(undo_one_end_s),
        "undo_one_iteration_at_end_ms": ms(undo_iteration_s),
        "goto_middle_ms": ms(goto_middle_s),
        "undo_one_op_after_goto_middle_ms": ms(undo_one_s),
        "widest_checkpoint_gap_ops": widest,
        "worst_jump_ms": ms(worst),
        "bit_exact": {"start": ok_start, "end": ok_end, "middle": ok_middle},
        "diverged": history.divergence,
    }
    if ns.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:>34}: {value}")
    failed = (
        peak > ns.limit_mb
        or over_budget
        or not (ok_start and ok_end and ok_middle)
        or history.divergence is not None
    )
    if failed:
        print("FAILED: over the memory limit or not bit-exact", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
