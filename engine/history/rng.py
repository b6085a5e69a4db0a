"""The random number generators a scenario draws from (torch CPU and CUDA, Python `random`,
NumPy's global state, and every generator its globals or its DataLoader hold): their state,
captured and put back."""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .copies import same_bits, tensor_bytes


def _gen_state(gen: Any) -> Any:
    if isinstance(gen, torch.Generator):
        return gen.get_state()
    if isinstance(gen, np.random.Generator):
        return copy.deepcopy(gen.bit_generator.state)
    if isinstance(gen, np.random.RandomState):
        return gen.get_state()
    if isinstance(gen, random.Random):
        return gen.getstate()
    raise TypeError(f"not a random number generator: {type(gen).__name__}")


def _set_gen_state(gen: Any, state: Any) -> None:
    if isinstance(gen, torch.Generator):
        gen.set_state(state)
    elif isinstance(gen, np.random.Generator):
        gen.bit_generator.state = copy.deepcopy(state)
    elif isinstance(gen, np.random.RandomState):
        gen.set_state(state)
    elif isinstance(gen, random.Random):
        gen.setstate(state)


def _cuda_ready() -> bool:
    return bool(torch.cuda.is_available() and torch.cuda.is_initialized())


@dataclass(frozen=True)
class RngState:
    """The state of every random number generator a scenario can draw from."""

    torch_cpu: torch.Tensor
    cuda: tuple[torch.Tensor, ...] | None
    """Per-device CUDA states; None when CUDA was not initialized (then its generators
    still hold their seed, `seed`, which restoring applies again)."""
    seed: int
    python: Any
    numpy: Any
    generators: tuple[Any, ...]

    @classmethod
    def capture(cls, generators: list[Any]) -> RngState:
        return cls(
            torch_cpu=torch.get_rng_state(),
            cuda=tuple(torch.cuda.get_rng_state_all()) if _cuda_ready() else None,
            seed=torch.initial_seed(),
            python=random.getstate(),
            numpy=np.random.get_state(),
            generators=tuple(_gen_state(g) for g in generators),
        )

    def restore(self, generators: list[Any]) -> None:
        torch.set_rng_state(self.torch_cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(list(self.cuda))
        elif _cuda_ready():
            torch.cuda.manual_seed_all(self.seed)
        random.setstate(self.python)
        np.random.set_state(self.numpy)
        for gen, state in zip(generators, self.generators, strict=True):
            _set_gen_state(gen, state)

    def same(self, other: RngState) -> bool:
        return (
            same_bits(self.torch_cpu, other.torch_cpu)
            and self.python == other.python
            and self.seed == other.seed
            and _same_tree(self.numpy, other.numpy)
            and _same_tree(self.cuda, other.cuda)
            and _same_tree(self.generators, other.generators)
        )

    def nbytes(self) -> int:
        tensors = [self.torch_cpu, *(self.cuda or ())]
        return sum(tensor_bytes(t) for t in tensors) + 8 * 1300 + 5200 * len(self.generators)


def _same_tree(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and same_bits(a, b)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and a.tobytes() == b.tobytes()
        )
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(_same_tree(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_tree(a[k], b[k]) for k in a)
    return bool(type(a) is type(b) and a == b)


def find_generators(namespace: dict[str, Any], data: Any) -> list[Any]:
    """The random number generators a scenario holds: its globals and its data's."""
    found: dict[int, Any] = {}
    kinds = (torch.Generator, np.random.Generator, np.random.RandomState, random.Random)
    for key, value in namespace.items():
        if not key.startswith("__") and isinstance(value, kinds):
            found.setdefault(id(value), value)
    holders = [data]
    sampler = getattr(data, "sampler", None)
    batch_sampler = getattr(data, "batch_sampler", None)
    holders += [sampler, batch_sampler, getattr(batch_sampler, "sampler", None)]
    for holder in holders:
        gen = getattr(holder, "generator", None) if holder is not None else None
        if isinstance(gen, kinds):
            found.setdefault(id(gen), gen)
    return list(found.values())
