"""What only DistributedDataParallel shows: ranks whose gradients differ after the all-reduce,
and a rank that skips a step the others take.

How the ranks compare without changing the script's numbers or its collectives: through the
key-value store of the script's own process group (`torch.distributed`'s c10d store, which
torchrun's agent serves), never through a collective of optdbg's (a collective must be
called by every rank in the same order, and a rank that skips a step would break that). At
each step a rank writes a digest of the gradients the step used (per parameter: the sum of
its elements' bits as integers, exact, and its norm), keyed by the optimizer and the number
of backward passes before it (DDP's backward is collective, so every rank counts the same).
Before each backward it writes that it arrived there. Once every rank arrived at backward
B+1 (DDP's all-reduce in it waits for them), every step after backward B has been written:
the ranks' digests of iteration B are compared, and a rank with no step there skipped it.
At the end, each rank says it ended and waits (at most `END_WAIT` seconds) for the others,
then the last iterations are compared.

Cost, only under a process group of more than one rank: a few store round trips per
iteration and one integer sum and one norm per parameter at each step.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import torch

from .. import fmt
from ..events import Finding
from .naming import Where

END_WAIT = 30.0
"""Seconds a rank waits at its end for the others to end (then compares what it has)."""
_PREFIX = "optdbg/trace/"
_INTS = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


@dataclass
class _Iteration:
    """One backward pass of this rank and the steps that used its gradients."""

    backward: int
    """Its backward's op index."""
    where: Where
    steps: dict[int, tuple[int, Where, str]] = field(default_factory=dict)
    """optimizer index -> (its step's op index, where, label)."""


class DdpCheck:
    """Compares this rank's steps with the other ranks' (see the module doc)."""

    def __init__(self, store: Any, rank: int, world: int, rtol: float) -> None:
        self.store = store
        """The script's store, held: it stays reachable after destroy_process_group."""
        self.rank = rank
        self.world = world
        self.rtol = rtol
        self.backwards = 0
        """Backward passes of this rank so far."""
        self._open: dict[int, _Iteration] = {}
        self.error: str | None = None
        """Why a comparison could not be made (the store failed); the script is unaffected."""

    @classmethod
    def current(cls, rtol: float) -> DdpCheck | None:
        """The check for this process's default process group, when it has several ranks."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return None
        world = dist.get_world_size()
        if world < 2:
            return None
        store = dist.distributed_c10d._get_default_store()
        return cls(store, dist.get_rank(), world, rtol)

    # ------------------------------------------------------------------ writing

    def arriving(self) -> None:
        """Before a backward: this rank reached it."""
        self._set(f"arrive/{self.backwards + 1}/{self.rank}", "1")

    def backward_done(self, index: int, where: Where) -> None:
        """After the backward at op `index` ran."""
        self.backwards += 1
        self._open[self.backwards] = _Iteration(index, where)

    @staticmethod
    def digest(grads: list[tuple[str, torch.Tensor]]) -> dict[str, list[float]]:
        """What a step's gradients are compared by, per parameter name: [bit sum, norm]."""
        tensors = [g for _, g in grads]
        return {
            name: [s, n]
            for (name, _), s, n in zip(grads, _sums(tensors), _norms(tensors), strict=True)
        }

    def stepped(
        self, optimizer: int, label: str, index: int, where: Where, digest: dict[str, list[float]]
    ) -> None:
        """A step (op `index`) used gradients of this digest: write it for the others."""
        iteration = self._open.get(self.backwards)
        if iteration is None or optimizer in iteration.steps:
            return
        iteration.steps[optimizer] = (index, where, label)
        record = {"op": index, "grads": digest}
        self._set(f"step/{optimizer}/{self.backwards}/{self.rank}", json.dumps(record))

    def _set(self, key: str, value: str) -> None:
        try:
            self.store.set(_PREFIX + key, value)
        except Exception as e:  # the comparison is lost, never the script
            self.error = f"{type(e).__name__}: {e}"

    # ------------------------------------------------------------------ comparing

    def waiting(self) -> set[int]:
        """Op indices whose DDP warnings are not known yet."""
        return {
            i
            for it in self._open.values()
            for i in (it.backward, *(s[0] for s in it.steps.values()))
        }

    def settle(self, optimizers: list[str]) -> list[tuple[int, Finding]]:
        """Compare the iterations every rank is past (all arrived at the next backward);
        (op index, warning) for each finding. `optimizers`: the labels of those this rank
        knows, by index."""
        done = [b for b in self._open if b < self.backwards]
        if not done or not self._all(f"arrive/{self.backwards}"):
            return []
        return self._compare(done, optimizers)

    def finish(self, optimizers: list[str]) -> list[tuple[int, Finding]]:
        """At the end: wait for every rank to end, then compare what is left."""
        if not self._open:
            return []
        self._set(f"end/{self.rank}", str(self.backwards))
        keys = [f"{_PREFIX}end/{r}" for r in range(self.world)]
        try:
            self.store.wait(keys, timedelta(seconds=END_WAIT))
        except Exception as e:
            self.error = f"not every rank ended within {END_WAIT:g} s ({type(e).__name__})"
            self._open = {}
            return []
        return self._compare(list(self._open), optimizers)

    def _all(self, key: str) -> bool:
        try:
            return bool(self.store.check([f"{_PREFIX}{key}/{r}" for r in range(self.world)]))
        except Exception as e:
            self.error = f"{type(e).__name__}: {e}"
            return False

    def _compare(self, backwards: list[int], optimizers: list[str]) -> list[tuple[int, Finding]]:
        found: list[tuple[int, Finding]] = []
        for b in sorted(backwards):
            iteration = self._open.pop(b)
            for opt in sorted(set(iteration.steps) | self._others_stepped(b, len(optimizers))):
                found += self._compare_step(b, iteration, opt, optimizers[opt])
        return found

    def _others_stepped(self, backward: int, count: int) -> set[int]:
        """Optimizers some rank stepped after this backward."""
        out = set()
        for opt in range(count):
            for r in range(self.world):
                if r != self.rank and self._has(f"step/{opt}/{backward}/{r}"):
                    out.add(opt)
                    break
        return out

    def _has(self, key: str) -> bool:
        try:
            return bool(self.store.check([_PREFIX + key]))
        except Exception:
            return False

    def _digests(self, opt: int, backward: int) -> dict[int, dict[str, Any]]:
        out = {}
        for r in range(self.world):
            key = f"step/{opt}/{backward}/{r}"
            if self._has(key):
                try:
                    out[r] = json.loads(self.store.get(_PREFIX + key))
                except Exception as e:
                    self.error = f"{type(e).__name__}: {e}"
        return out

    def _compare_step(
        self, backward: int, iteration: _Iteration, opt: int, label: str
    ) -> list[tuple[int, Finding]]:
        digests = self._digests(opt, backward)
        mine = iteration.steps.get(opt)
        stepped = sorted(digests)
        skipped = [r for r in range(self.world) if r not in digests]
        found = []
        if skipped and stepped:
            target = mine[0] if mine is not None else iteration.backward
            found.append((target, self._skipped(label, iteration, skipped, stepped, mine)))
        if mine is not None and len(stepped) > 1:
            finding = self._differ(label, mine, digests)
            if finding is not None:
                found.append((mine[0], finding))
        return found

    def _skipped(
        self,
        label: str,
        iteration: _Iteration,
        skipped: list[int],
        stepped: list[int],
        mine: tuple[int, Where, str] | None,
    ) -> Finding:
        who = _ranks(skipped)
        if mine is None:
            head = (
                f"this rank ({self.rank}) did not call {label}.step() after the backward at op "
                f"{iteration.backward} ({iteration.where.short}), while {_ranks(stepped)} did"
            )
        else:
            head = (
                f"{who} did not call {label}.step() after the backward pass that this step "
                f"(op {mine[0]}, {mine[1].short}) used, while {_ranks(stepped)} did"
            )
        return Finding(
            "ddp-step-skipped",
            f"{head}: the replicas' parameters are no longer the same, and every later "
            "all-reduce averages gradients of different models. Call optimizer.step() on "
            "every rank after every synchronized backward.",
        )

    def _differ(
        self,
        label: str,
        mine: tuple[int, Where, str],
        digests: dict[int, dict[str, Any]],
    ) -> Finding | None:
        own = digests[self.rank]["grads"]
        differ: list[tuple[str, int, float, float]] = []
        for r, other in sorted(digests.items()):
            theirs = other["grads"]
            for name in own if r != self.rank else ():
                if name not in theirs:
                    continue
                (sum_a, a), (sum_b, b) = own[name], theirs[name]
                same = sum_a == sum_b if self.rtol == 0 else math.isclose(a, b, rel_tol=self.rtol)
                if not same:
                    differ.append((name, r, a, b))
        if not differ:
            return None
        shown = "; ".join(
            f"{name}: norm {fmt.num(a)} here, {fmt.num(b)} on rank {r}"
            for name, r, a, b in differ[:3]
        )
        more = f" (+{len(differ) - 3} more)" if len(differ) > 3 else ""
        tolerance = "bit for bit" if self.rtol == 0 else f"within rtol {fmt.num(self.rtol)}"
        return Finding(
            "ddp-grads-differ",
            f"the gradients {label}.step() at op {mine[0]} ({mine[1].short}) used are not the "
            f"same on every rank ({tolerance}) although DDP's all-reduce made them equal: "
            f"{shown}{more}. Something changed them on one rank after the backward (a "
            "rank-dependent clip or scale, a backward under no_sync() before the step), so "
            "the replicas drift apart. Change gradients identically on every rank, and leave "
            "no_sync() for the last backward before a step.",
            param=differ[0][0],
        )


def ddp_params() -> set[int]:
    """id() of the parameters of every DistributedDataParallel module alive now (a scan of
    the garbage collector's objects, done once, for modules wrapped before tracing began)."""
    import gc

    ddp = torch.nn.parallel.DistributedDataParallel
    return {id(p) for m in gc.get_objects() if isinstance(m, ddp) for p in m.parameters()}


def _ranks(ranks: list[int]) -> str:
    return ("rank " if len(ranks) == 1 else "ranks ") + ", ".join(map(str, ranks))


def _sums(grads: list[torch.Tensor]) -> list[int]:
    """Per gradient, the sum of its elements' bit patterns as integers: equal bits, equal sums."""
    if not grads:
        return []
    sums = [
        g.detach().contiguous().view(_INTS[g.element_size()]).sum(dtype=torch.int64)
        if g.element_size() in _INTS and not g.is_sparse
        else torch.zeros((), dtype=torch.int64)
        for g in grads
    ]
    return [int(x) for x in torch.stack([s.cpu() for s in sums]).tolist()]


def _norms(grads: list[torch.Tensor]) -> list[float]:
    if not grads:
        return []
    norms = [torch.linalg.vector_norm(g.detach(), dtype=torch.float64).cpu() for g in grads]
    return [float(x) for x in torch.stack(norms).tolist()]
