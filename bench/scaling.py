"""Work proportional to the parameter count on every op.

Counts what `engine.snapshot.summarize` (the mean/std/min/max/norm of a big tensor, which
reads every element) is asked to do per op on the MLP, once for the op alone (`optdbg run
--quiet`) and once for the op plus what the TUI captures after it (`OptDbgApp._capture`:
snapshot, update rule, selected parameter's values, timeline, graph), in multiples of the
parameter count, and how much of it summarizes the same tensor data (storage, layout,
version) a second time within the same op. Also times the UI thread's part (`_apply`, from
the key-latency runs) on the bowl and on the MLP: it must not grow with the model.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .common import MLP, median, perf

WORDS = ("f", "b", "s", "z")


class _Counting:
    def __init__(self) -> None:
        import optdbg.engine.snapshot as snapshot

        self.module = snapshot
        self.original = snapshot.summarize
        self.calls = 0
        self.elements = 0
        self.seconds = 0.0
        self.keys: Counter[tuple[Any, ...]] = Counter()

    def __enter__(self) -> _Counting:
        original = self.original

        def summarize(t: Any) -> Any:
            self.calls += 1
            self.elements += t.numel()
            try:
                key = (
                    t.untyped_storage().data_ptr(),
                    t.storage_offset(),
                    tuple(t.shape),
                    t.stride(),
                    t._version,
                )
            except Exception:  # a tensor without storage: never a repeat
                key = (id(t), self.calls)
            self.keys[key] += 1
            t0 = perf()
            try:
                return original(t)
            finally:
                self.seconds += perf() - t0

        self.module.summarize = summarize  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        self.module.summarize = self.original  # type: ignore[assignment]

    def reset(self) -> None:
        self.calls = self.elements = 0
        self.seconds = 0.0
        self.keys.clear()

    def repeated(self) -> int:
        """Calls that summarized data already summarized since the last reset."""
        return sum(n - 1 for n in self.keys.values() if n > 1)


def _capture_fn() -> Any:
    from optdbg.engine.debugger.facade import Debugger

    def capture(session: Any) -> Any:
        """What the TUI computes after each op: the façade's detached view of the panels."""
        return Debugger(session).view()

    return capture


def run(quick: bool = False) -> dict[str, Any]:
    from optdbg.engine import Session

    iterations = 2 if quick else 5
    out: dict[str, Any] = {}
    capture = _capture_fn()
    for mode in ("engine", "engine+tui_capture"):
        session = Session.open(MLP)
        session.capture_graph = mode != "engine"
        n_params = sum(t.numel() for g in session.optimizer.param_groups for t in g["params"])
        for word in WORDS:  # warm up
            session.perform(word)
        per_op: dict[str, list[tuple[int, int, int, float]]] = {w: [] for w in WORDS}
        # (summaries, elements summarized, repeated summaries, share of the op's time)
        with _Counting() as counting:
            for _ in range(iterations):
                for word in WORDS:
                    counting.reset()
                    t0 = perf()
                    session.perform(word)
                    if mode != "engine":
                        capture(session)
                    share = counting.seconds / (perf() - t0)
                    row = (counting.calls, counting.elements, counting.repeated(), share)
                    per_op[word].append(row)
        ops = {}
        for word, rows in per_op.items():
            ops[word] = {
                "summaries": median([r[0] for r in rows]),
                "elements_x_params": median([r[1] for r in rows]) / n_params,
                "repeated_summaries": median([r[2] for r in rows]),
                "share_of_op_time": median([r[3] for r in rows]),
            }
        out[mode] = {
            "parameters": n_params,
            "ops": ops,
            "elements_x_params_per_iteration": sum(o["elements_x_params"] for o in ops.values()),
            "repeated_per_iteration": sum(o["repeated_summaries"] for o in ops.values()),
        }
    return out
