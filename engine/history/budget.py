"""The checkpoints kept within a byte budget: every object they hold is counted once however
many share it; when a new one does not fit, the one whose removal costs least goes (the gap
it leaves, in ops, relative to the square root of its distance from the current position),
so checkpoints stay dense near where the user is and thin out towards the start. The start
checkpoint is never evicted, so undo always reaches the start."""

from __future__ import annotations

import math
from typing import Any

import torch

from .checkpoint import Checkpoint
from .copies import PythonState, tensor_bytes
from .rng import RngState

MAX_CHECKPOINTS = 4096
_FIXED_BYTES = 2048
"""Accounting for the small Python objects of a checkpoint (counters, dicts)."""


class Budget:
    """The checkpoints, sorted by position, and the bytes they hold."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        """Bytes the checkpoints may hold (the start checkpoint is kept even past it)."""
        self.checkpoints: list[Checkpoint] = []
        self.nbytes = 0
        """Bytes held by the checkpoints now."""
        self.peak_nbytes = 0
        self.estimate = 0
        """Bytes the last checkpoint offered needed."""
        self._refs: dict[int, tuple[int, int]] = {}

    def start_bytes(self) -> int:
        return sum(held_bytes(x) for x in self.checkpoints[0].held) if self.checkpoints else 0

    def add(self, ck: Checkpoint) -> None:
        for obj in ck.held:
            count, size = self._refs.get(id(obj), (0, held_bytes(obj)))
            if count == 0:
                self.nbytes += size
            self._refs[id(obj)] = (count + 1, size)
        self.nbytes += _FIXED_BYTES
        self.checkpoints.append(ck)
        self.checkpoints.sort(key=lambda c: c.position)
        self.peak_nbytes = max(self.peak_nbytes, self.nbytes)

    def remove(self, ck: Checkpoint) -> None:
        if ck not in self.checkpoints:
            return
        self.checkpoints.remove(ck)
        for obj in ck.held:
            count, size = self._refs[id(obj)]
            if count == 1:
                del self._refs[id(obj)]
                self.nbytes -= size
            else:
                self._refs[id(obj)] = (count - 1, size)
        self.nbytes -= _FIXED_BYTES

    def clear(self) -> None:
        for ck in list(self.checkpoints):
            self.remove(ck)

    def _incoming(self, ck: Checkpoint) -> int:
        """Bytes that adding `ck` would add (what it shares with others is counted already)."""
        seen: set[int] = set()
        total = _FIXED_BYTES
        for obj in ck.held:
            if id(obj) not in self._refs and id(obj) not in seen:
                seen.add(id(obj))
                total += held_bytes(obj)
        return total

    def make_room(self, new: Checkpoint, ops: int) -> bool:
        """Evict checkpoints until `new` fits in the budget; False when it cannot fit.
        `ops` is the length of the op log (where the last gap ends)."""
        pos = new.position
        while True:
            need = self._incoming(new)
            self.estimate = need
            if self.nbytes + need <= self.limit and len(self.checkpoints) < MAX_CHECKPOINTS:
                return True
            cks = sorted([*self.checkpoints, new], key=lambda c: c.position)
            end = max(ops, pos)
            best: tuple[float, Checkpoint] | None = None
            for i in range(1, len(cks)):
                if cks[i] is new:
                    continue
                after = cks[i + 1].position if i + 1 < len(cks) else end
                gap = after - cks[i - 1].position
                score = gap / math.sqrt(abs(pos - cks[i].position) + 1)
                if best is None or score < best[0]:
                    best = (score, cks[i])
            if best is None:
                return False
            self.remove(best[1])


def held_bytes(obj: Any) -> int:
    if isinstance(obj, torch.Tensor):
        return tensor_bytes(obj)
    if isinstance(obj, RngState):
        return obj.nbytes()
    if isinstance(obj, PythonState):
        return obj.nbytes
    return 0
