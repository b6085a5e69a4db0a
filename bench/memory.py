"""Peak memory over a long run, each in a fresh process so its peak RSS is its own.

`python -m bench.memory --iterations 1500` runs whole iterations of the MLP through a
Session with default settings (detectors on, history on with its default budget) and prints
one JSON object: peak RSS, RSS after loading, what the history holds, time per iteration.
`--plain` runs the same number of iterations of the plain loop instead, for comparison.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from typing import Any

from .common import HERE, MLP, perf


def rss_mb() -> float:
    """Peak resident set size of this process, in MiB.

    VmHWM from /proc/self/status where there is one: ru_maxrss would do in a process started
    from a shell, but Linux carries a parent's peak over fork and exec into ru_maxrss, and
    the parent here (the bench) holds torch and an app already."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory")
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--scenario", default=MLP)
    parser.add_argument("--plain", action="store_true")
    ns = parser.parse_args(argv)

    from optdbg.engine import Session
    from optdbg.engine.scenario import load

    out: dict[str, Any] = {"iterations": ns.iterations, "mode": "plain" if ns.plain else "session"}
    if ns.plain:
        scenario = load(ns.scenario)
        fwd, opt = scenario.namespace["forward"], scenario.optimizer
        out["rss_after_load_mb"] = rss_mb()
        t0 = perf()
        for _ in range(ns.iterations):
            loss = fwd()
            loss.backward()
            opt.step()
            opt.zero_grad()
    else:
        session = Session.open(ns.scenario)
        out["rss_after_load_mb"] = rss_mb()
        t0 = perf()
        for _ in range(ns.iterations):
            for event in session.iteration():
                if event.error is not None:
                    raise SystemExit(f"op failed: {event.summary}")
        history = session.history
        out["history_budget_mb"] = history.budget / 2**20
        out["history_mb"] = history.nbytes / 2**20
        out["history_peak_mb"] = history.peak_nbytes / 2**20
        out["checkpoints"] = len(history.checkpoints)
        out["events"] = len(session.events)
    out["ms_per_iteration"] = 1000 * (perf() - t0) / ns.iterations
    out["peak_rss_mb"] = rss_mb()
    print(json.dumps(out))
    return 0


def measure(iterations: int, plain: bool = False) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.memory", "--iterations", str(iterations)]
    if plain:
        cmd.append("--plain")
    done = subprocess.run(
        cmd, cwd=HERE.parent, capture_output=True, text=True, check=False, timeout=1200
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(quick: bool = False) -> dict[str, Any]:
    iterations = 5 if quick else 1500
    return {
        "session": measure(iterations),
        "plain": measure(5 if quick else 200, plain=True),
        "limit_mb": 1024,
        "limit_from": "issue 6 (time travel): 1,500 MLP iterations under 1 GiB peak RSS",
    }


if __name__ == "__main__":
    sys.exit(main())
