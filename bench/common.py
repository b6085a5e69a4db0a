"""Shared helpers: timing statistics, the machine description, scenario paths."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE / "scenarios"
BOWL = "quadratic_bowl"
LINREG = "linear_regression"
MLP = str(SCENARIOS / "mlp_535k.py")
DEEP = str(SCENARIOS / "deep_mlp.py")

perf = time.perf_counter


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100), as numpy's default."""
    if not values:
        return float("nan")
    xs = sorted(values)
    k = (len(xs) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def loadavg() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


@dataclass
class LoadMonitor:
    """The 1-minute load average sampled while sections run (the machine is shared)."""

    samples: list[float] = field(default_factory=list)

    def sample(self) -> None:
        self.samples.append(round(loadavg(), 2))

    def summary(self) -> dict[str, float]:
        if not self.samples:
            return {}
        return {
            "min": min(self.samples),
            "median": round(median(self.samples), 2),
            "max": max(self.samples),
        }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> dict[str, Any]:
    import torch

    return {
        "cpus": os.cpu_count(),
        "cpu": cpu_model(),
        "gpu": "none" if not torch.cuda.is_available() else torch.cuda.get_device_name(0),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(terse=True),
        "executable": sys.executable,
    }


def interleaved(
    a: Callable[[], float], b: Callable[[], float], rounds: int
) -> tuple[list[float], list[float]]:
    """Run a and b alternately (ABBA order, so drift in the machine's load hits both
    alike); each returns one measurement. Returns both series."""
    xs: list[float] = []
    ys: list[float] = []
    for r in range(rounds):
        if r % 2 == 0:
            xs.append(a())
            ys.append(b())
        else:
            ys.append(b())
            xs.append(a())
    return xs, ys


def fmt_ms(seconds: float, digits: int = 1) -> str:
    return f"{seconds * 1e3:.{digits}f} ms"


def fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} µs"
