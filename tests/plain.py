"""The reference "plain PyTorch loop" for scenarios.

`run_plain` loads a scenario exactly as optdbg does; `PlainLoop` performs
ops by word with nothing but the calls a hand-written training loop makes.
Engine fidelity tests compare optdbg's values against these, bit for bit.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

SCENARIOS_DIR = Path(__file__).parents[1] / "scenarios"


def scenario_path(path_or_name: str | Path) -> Path:
    """A built-in scenario's name (e.g. "quadratic_bowl") or a path to a file."""
    text = str(path_or_name)
    if text.endswith(".py") or "/" in text or "\\" in text:
        return Path(path_or_name)
    return SCENARIOS_DIR / f"{text}.py"


def run_plain(path_or_name: str | Path) -> dict[str, Any]:
    """Load a scenario like optdbg: seed torch, `random` and NumPy's global generator
    with 0, exec in a fresh namespace."""
    path = scenario_path(path_or_name)
    code = compile(path.read_text(encoding="utf-8"), str(path), "exec")
    namespace: dict[str, Any] = {"__name__": "__optdbg_scenario__", "__file__": str(path)}
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    exec(code, namespace)
    return namespace


class PlainLoop:
    """Performs f / b / s / z (and i = f b s z) on a loaded scenario namespace."""

    WORDS: ClassVar[dict[str, str]] = {
        "f": "f",
        "forward": "f",
        "b": "b",
        "backward": "b",
        "s": "s",
        "step": "s",
        "z": "z",
        "zero_grad": "z",
    }

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.ns = namespace
        self.optimizer: torch.optim.Optimizer | None = namespace.get("optimizer")
        """None for the manual update form: the scenario's own step() and zero_grad()."""
        self.scheduler = namespace.get("scheduler")
        self.scheduler_every = namespace.get("scheduler_every", "step")
        self.data = namespace.get("data")
        self.loss: torch.Tensor | None = None
        self.epoch = 0  # epochs started (1 after the first batch is drawn)
        self.batch = 0  # 1-based index of the latest batch within its epoch
        self._batches: Any = None  # the data iterator, created at the first forward

    @classmethod
    def load(cls, path_or_name: str | Path) -> PlainLoop:
        return cls(run_plain(path_or_name))

    def next_batch(self) -> Any:
        if self._batches is None:
            self._batches = iter(self.data)
            self.epoch, self.batch = 1, 0
        try:
            batch = next(self._batches)
        except StopIteration:
            if self.scheduler is not None and self.scheduler_every == "epoch":
                self.scheduler.step()
            self._batches = iter(self.data)
            self.epoch, self.batch = self.epoch + 1, 0
            batch = next(self._batches)
        self.batch += 1
        return batch

    def forward(self) -> torch.Tensor:
        forward = self.ns.get("forward")
        if forward is not None:
            if self.data is not None:
                self.loss = forward(self.next_batch())
            else:
                self.loss = forward()
        else:
            X, y = self.next_batch()
            self.loss = self.ns["loss_fn"](self.ns["model"](X), y)
        return self.loss

    def backward(self) -> None:
        assert self.loss is not None, "backward before any forward"
        self.loss.backward()

    def step(self) -> None:
        if self.optimizer is None:
            self.ns["step"]()
            return
        self.optimizer.step()
        if self.scheduler is not None and self.scheduler_every != "epoch":
            self.scheduler.step()

    def zero_grad(self) -> None:
        if self.optimizer is not None:
            self.optimizer.zero_grad()
        elif "zero_grad" in self.ns:
            self.ns["zero_grad"]()
        else:
            for p in self.params():
                p.grad = None

    def params(self) -> list[torch.Tensor]:
        """The parameters: the optimizer's, `params`, or (manual form) every leaf tensor
        requiring grad among the globals and the model's parameters."""
        if self.optimizer is not None:
            return [p for g in self.optimizer.param_groups for p in g["params"]]
        if "params" in self.ns:
            return list(self.ns["params"])
        found: dict[int, torch.Tensor] = {}
        for key, value in self.ns.items():
            if key.startswith("__"):
                continue
            tensors = list(value.parameters()) if isinstance(value, torch.nn.Module) else [value]
            for t in tensors:
                if isinstance(t, torch.Tensor) and t.is_leaf and t.requires_grad:
                    found.setdefault(id(t), t)
        return list(found.values())

    def op(self, word: str) -> None:
        if word in ("i", "iteration"):
            for w in "fbsz":
                self.op(w)
            return
        letter = self.WORDS[word]
        if letter == "f":
            self.forward()
        elif letter == "b":
            self.backward()
        elif letter == "s":
            self.step()
        else:
            self.zero_grad()

    def ops(self, words: str, repeat: int = 1) -> None:
        """Perform a whitespace-separated list of op words, `repeat` times."""
        for _ in range(repeat):
            for word in words.split():
                self.op(word)


def assert_the_lectures_losses(losses: list[float]) -> None:
    """SCENARIOS.md 11's facts. Its loss at zeros, 59888326.630047254, is NumPy's pairwise
    sum of the squares; torch's float64 sum (a 4-accumulator cascade over vector lanes, see
    ATen's SumKernel.cpp) gives 59888326.63004726, 1 ulp away, and so would it with 4 or 8
    lanes (AVX2, AVX-512: emulated with NumPy in the lead's note; 1 or 2 lanes give ...725).
    The 30th loss depends on the kernels too (ATEN_CPU_CAPABILITY=default ends 1 ulp off):
    exact where this machine's kernel is AVX2, within 1 ulp elsewhere."""
    first, thirtieth = 59888326.630047254, 10244.764879521525
    assert math.isclose(losses[0], first, rel_tol=2**-52, abs_tol=0)
    assert math.isclose(losses[29], thirtieth, rel_tol=2**-52, abs_tol=0)
    if torch.backends.cpu.get_cpu_capability() == "AVX2":
        assert losses[0] == 59888326.63004726
        assert losses[29] == thirtieth
