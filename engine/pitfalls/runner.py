"""The runner: builds each op's facts from the Session, runs the catalogue's rules on them and
remembers what the rules need (conditions reported, gradient windows, the loss series)."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from .. import fmt
from ..errors import ScenarioError, failure, source_line
from ..events import Finding, OpError
from ..scenario import Scenario, batch_count, grad_tensors
from ..snapshot import TensorView, view
from .catalogue import ONCE_CODES
from .context import Clear, Context, Detector, Extra, ParamInfo, Texter
from .evaluation import overfitting
from .gradients import grad_scale
from .loss import diverging, loss_no_grad, loss_not_scalar, non_finite, plateau
from .lossfn import init_loss_mismatch, loss_at_chance, loss_broadcast, softmax_before_ce
from .measure import measure, measure_all, nonfinite_all, version_sum
from .memory import loss_history_retained
from .modules import dead_relu, eval_mode_training
from .optim import decay_on_bias_norm, lr_schedule_odd, optimizer_recreated
from .order import (
    backward_twice,
    backwards_per_zero,
    grad_accumulated,
    inplace_saved_tensor,
    scheduler_order,
    stale_grad,
    stale_graph,
    step_without_grad,
)
from .params import frozen_param, param_not_in_graph, param_not_in_optimizer, param_replaced
from .probes import Probes
from .thresholds import Thresholds
from .updates import clip_order, update_ratio

if TYPE_CHECKING:
    from ..loop import LoopState


ANY_OP: frozenset[str] = frozenset()

CATALOGUE: tuple[tuple[frozenset[str], Detector], ...] = (
    (frozenset({"forward"}), loss_not_scalar),
    (frozenset({"backward"}), grad_accumulated),
    (frozenset({"load", "forward"}), frozen_param),
    (ANY_OP, scheduler_order),
    (frozenset({"forward"}), loss_no_grad),
    (frozenset({"step"}), step_without_grad),
    (frozenset({"step"}), stale_grad),
    (frozenset({"backward"}), backward_twice),
    (frozenset({"backward"}), stale_graph),
    (frozenset({"backward"}), param_not_in_graph),
    (frozenset({"backward"}), param_not_in_optimizer),
    (frozenset({"forward", "backward", "step"}), non_finite),
    (frozenset({"backward"}), grad_scale),
    (frozenset({"forward"}), diverging),
    (frozenset({"forward"}), plateau),
    (frozenset({"load"}), decay_on_bias_norm),
    (frozenset({"forward"}), eval_mode_training),
    (frozenset({"forward"}), softmax_before_ce),
    (frozenset({"forward"}), loss_broadcast),
    (frozenset({"forward"}), init_loss_mismatch),
    (frozenset({"forward"}), loss_at_chance),
    (frozenset({"forward"}), dead_relu),
    (frozenset({"forward"}), loss_history_retained),
    (frozenset({"backward"}), inplace_saved_tensor),
    (ANY_OP, clip_order),
    (frozenset({"step"}), update_ratio),
    (frozenset({"step"}), optimizer_recreated),
    (frozenset({"step"}), lr_schedule_odd),
    (ANY_OP, param_replaced),
    (frozenset({"evaluate"}), overfitting),
)
"""The detectors, each with the ops it looks at (empty: every op), run in this order after
each op. A parameter made frozen after load is noticed at the next forward."""


_BY_OP: dict[str, tuple[Detector, ...]] = {}


def _for_op(op: str) -> tuple[Detector, ...]:
    """The catalogue's detectors that look at `op`, in catalogue order (cached)."""
    found = _BY_OP.get(op)
    if found is None:
        found = _BY_OP[op] = tuple(d for ops, d in CATALOGUE if not ops or op in ops)
    return found


class Detectors:
    """Runs the catalogue after each op of one Session and keeps what they need to remember:
    the conditions already reported, gradient-norm windows, the loss series, op indices."""

    def __init__(
        self,
        loop: LoopState,
        thresholds: Thresholds,
        extras: Sequence[tuple[str, torch.Tensor]] = (),
        full_batch: bool = True,
        namespace: Mapping[str, Any] | None = None,
        accumulation: int | None = None,
        scalar_loss: bool = False,
        late_forward: bool = False,
    ) -> None:
        """`extras`: named tensors requiring grad outside the parameters (for
        param-not-in-optimizer); `full_batch`: every forward sees the same data, so the loss
        series is every loss (else the mean loss of each epoch); `namespace`: the globals of
        the code being debugged (its modules, its forward, the names of its parameters);
        `accumulation` and `scalar_loss`: see `Context` (grad-accumulated, loss-not-scalar);
        `late_forward`: the driver reports each forward once it ran (see `Probes`)."""
        self.thresholds = thresholds
        self._accumulation = accumulation
        self._scalar_loss = scalar_loss
        self._probes = Probes(loop, thresholds, namespace or {}, late_forward)
        self._between: dict[str, Any] = {}
        self._errors: list[str] = []
        """What failed since the last `take_errors` (detectors never break an op)."""
        self._active: set[tuple[str, str | None]] = set()
        held = {id(t.tensor) for t in loop.tracks}
        self._extras = [(n, t) for n, t in extras if id(t) not in held]
        self._extra_before: dict[str, tuple[int, int] | None] = {}
        self._windows: dict[str, deque[float]] = {}
        th = self.thresholds
        self._series: deque[float] = deque(maxlen=max(th.plateau_patience, th.diverge_rises) + 1)
        """The recent end of the loss series: all that plateau and diverging look at."""
        self._full_batch = full_batch
        self._epoch: int | None = None
        self._epoch_sum = 0.0
        self._epoch_count = 0
        self._first: float | None = None
        self._best: float | None = None
        self._source = ""
        """The loss source whose series the attributes above hold (see `_use_source`)."""
        self._sources: dict[str, tuple[Any, ...]] = {}
        """The other sources' series, parked."""
        self._grad_total: float | None = None
        self._grad_total_max = 0.0
        self._forward_index: int | None = None
        self._forward_versions = 0
        self._backward_index: int | None = None
        self._changed_index: int | None = None
        self._last_step_index: int | None = None
        self._backward_since_step = False
        self._last_zero_index: int | None = None
        self._sched_before: tuple[int, bool, float] | None = None
        self._hyper_before: list[dict[str, str]] = []
        self._maximize = bool(loop.param_groups) and all(
            bool(g.get("maximize", False)) for g in loop.param_groups
        )
        self.pending: tuple[Finding, ...] = ()
        """Findings at load (frozen-param, scheduler-order), attached to the first event."""
        sched = loop.scheduler
        at_load = (
            sched is not None
            and getattr(sched, "_step_count", 1) > 1
            and not loop.optimizer_stepped
        )
        ctx = Context(
            op="load",
            op_index=0,
            error=None,
            thresholds=self.thresholds,
            params=tuple(self._infos(loop, "load", None)),
            extras=(),
            lrs=(),
            maximize=self._maximize,
            step_count=0,
            loss=None,
            scheduler_at_load=at_load,
            **self._probes.load_facts(loop),
        )
        self.pending = tuple(self._evaluate(ctx))

    @classmethod
    def for_scenario(cls, loop: LoopState, scenario: Scenario) -> Detectors:
        """The detectors of a scenario's session: its optdbg_config thresholds, its other
        tensors requiring grad as extras, the accumulation its op pattern means, and whether
        its backward takes a gradient (raises ScenarioError for a bad config)."""
        return cls(
            loop,
            _thresholds(scenario),
            grad_tensors(scenario.namespace),
            _full_batch(scenario),
            scenario.namespace,
            backwards_per_zero(scenario.pattern),
            scenario.backward_gradient is None,
        )

    # ------------------------------------------------------------- hooks

    def close(self) -> None:
        """Remove what the detectors hooked into the code's modules."""
        self._probes.close()

    def before(self, loop: LoopState, op: str) -> None:
        """Called by the driver just before an op runs."""
        try:
            self._before(loop, op)
            self._between = self._probes.before(loop, op)
        except Exception as e:  # observing must never break an op
            self._failed(failure(e))

    def after(
        self, loop: LoopState, op: str, error: OpError | None, found: Sequence[Finding]
    ) -> tuple[Finding, ...]:
        """The warnings of the op just performed: the op's own, then the catalogue's."""
        out = list(self.pending) + list(found)
        self.pending = ()
        try:
            facts = self._between | self._probes.after(loop, op, error)
            self._between = {}
            if op == "zero_grad" and loop.scheduler is None and not facts:
                # nothing to check (only scheduler-order looks at it): just remember it
                if error is None:
                    self._last_zero_index = len(loop.events)
            else:
                ctx = self._context(loop, op, error, facts)
                out += self._evaluate(ctx)
                self._remember(loop, ctx)
        except Exception as e:  # observing must never break an op
            self._failed(failure(e))
        if self._probes.error is not None:
            self._failed(self._probes.error)
            self._probes.error = None
        silence = self.thresholds.silence
        return tuple(f for f in out if f.code not in silence)

    def take_errors(self) -> tuple[str, ...]:
        """What failed since the last call, one line each, forgotten here: the driver puts
        it on the op's event (`Event.observer_errors`)."""
        errors, self._errors = tuple(self._errors), []
        return errors

    def _failed(self, what: str) -> None:
        self._errors.append(
            f"pitfall detectors failed (this op's warnings may be incomplete): {what}"
        )

    # ------------------------------------------------------------- undo / redo

    _SCALARS = (
        "_epoch",
        "_epoch_sum",
        "_epoch_count",
        "_first",
        "_best",
        "_grad_total",
        "_grad_total_max",
        "_forward_index",
        "_forward_versions",
        "_backward_index",
        "_changed_index",
        "_last_step_index",
        "_backward_since_step",
        "_last_zero_index",
        "pending",
    )

    def history_state(self) -> dict[str, Any]:
        """A detached copy of what the detectors remember (the history protocol: undo
        restores it, then replays ops through the Session, which runs the detectors again)."""
        state = {k: getattr(self, k) for k in self._SCALARS}
        state["_active"] = frozenset(self._active)
        state["_windows"] = {k: tuple(v) for k, v in self._windows.items()}
        state["_series"] = tuple(self._series)
        state["probes"] = self._probes.state()
        return state

    def restore_history_state(self, state: dict[str, Any]) -> None:
        for k in self._SCALARS:
            setattr(self, k, state[k])
        self._active = set(state["_active"])
        window = self.thresholds.grad_window
        self._windows = {k: deque(v, maxlen=window) for k, v in state["_windows"].items()}
        self._series = deque(state["_series"], maxlen=self._series.maxlen)
        self._probes.restore(state["probes"])

    # ------------------------------------------------------------- internals

    def _evaluate(self, ctx: Context) -> list[Finding]:
        found = []
        for detector in _for_op(ctx.op):
            for item in detector(ctx):
                if isinstance(item, Clear):
                    self._active.discard((item.code, item.param))
                    continue
                key = (item.code, item.param)
                if item.code in ONCE_CODES:
                    if key in self._active:
                        continue
                    self._active.add(key)
                found.append(item)
        return [f for f in found if f.code not in self.thresholds.silence]

    def _before(self, loop: LoopState, op: str) -> None:
        sched = loop.scheduler
        if sched is not None:
            self._sched_before = (
                int(getattr(sched, "_step_count", 0)),
                loop.optimizer_stepped or loop.step_count > 0,
                _first_lr(loop),
            )
        if op == "set":
            self._hyper_before = _hypers(loop)
        if op == "backward":
            self._extra_before = {
                n: None if t.grad is None else (id(t.grad), t.grad._version)
                for n, t in self._extras
            }

    def _infos(
        self,
        loop: LoopState,
        op: str,
        error: OpError | None,
    ) -> Iterator[ParamInfo]:
        """Each parameter as the op left it."""
        ok = error is None
        received = loop.received if op == "backward" and ok else {}
        moved = op == "step" and ok
        grads = [  # what this op changed: each received grad, or each moved value
            t.tensor.grad for t in loop.tracks if t.name in received and t.tensor.grad is not None
        ]
        measures = iter(measure_all(grads))
        values = [t.tensor for t in loop.tracks if moved and t.tensor.grad is not None]
        nonfinite = iter(nonfinite_all(values))
        for track in loop.tracks:
            p = track.tensor
            name = track.name
            if p.grad is None:
                yield ParamInfo(name, p.requires_grad, False, 0)
            elif name in received:
                norm, bad = next(measures)
                window = self._windows.get(name)
                added = received[name]
                yield ParamInfo(
                    name,
                    p.requires_grad,
                    True,
                    track.accumulated,
                    received=True,
                    added=added if isinstance(added, TensorView | float) else None,
                    grad_norm=norm,
                    grad_nonfinite=bad,
                    recent_norms=tuple(window) if window else (),
                )
            elif moved:
                yield ParamInfo(
                    name,
                    p.requires_grad,
                    True,
                    track.accumulated,
                    moved=True,
                    value_nonfinite=next(nonfinite),
                )
            else:
                yield ParamInfo(name, p.requires_grad, True, track.accumulated)

    def _context(
        self, loop: LoopState, op: str, error: OpError | None, facts: dict[str, Any]
    ) -> Context:
        index = len(loop.events)
        ok = error is None
        params = tuple(self._infos(loop, op, error))
        ratios = facts.pop("ratios", None)
        if ratios:
            params = tuple(
                p._replace(update_ratio=ratios[p.name][0], ratio_streak=ratios[p.name][1])
                if p.name in ratios
                else p
                for p in params
            )
        extras: list[Extra] = []
        if op == "backward" and ok:
            for name, t in self._extras:
                grad = t.grad
                if grad is None:
                    continue
                if self._extra_before.get(name) != (id(grad), grad._version):
                    extras.append(Extra(name, tuple(t.shape), measure(grad)[0]))
        loss_shape = loss_requires_grad = None
        series_new = False
        judges = True
        if op == "forward":
            self._use_source(loop)
            judges = bool(getattr(loop, "judges_loss", True))
        if op == "forward" and ok and loop.loss is not None:
            loss_shape = tuple(loop.loss.shape)
            loss_requires_grad = bool(loop.loss.requires_grad)
            if loop.loss_value is not None:
                series_new = self._extend_series(loop, loop.loss_value)
        changed = None
        if op == "backward" and self._forward_index is not None:
            changed = self._changed_index
        stepped = None
        sched = loop.scheduler
        if sched is not None and self._sched_before is not None:
            count_before, called_before, lr_before = self._sched_before
            count_after = int(getattr(sched, "_step_count", 0))
            if count_after > count_before and not called_before and op != "step":
                stepped = (lr_before, _first_lr(loop))
        return Context(
            op=op,
            op_index=index,
            error=error,
            thresholds=self.thresholds,
            params=params,
            extras=tuple(extras),
            lrs=tuple(float(g["lr"]) for g in loop.param_groups if "lr" in g),
            maximize=self._maximize,
            step_count=loop.step_count,
            loss=loop.loss_value,
            loss_shape=loss_shape,
            loss_requires_grad=loss_requires_grad,
            scalar_loss=self._scalar_loss,
            accumulation=self._accumulation,
            losses=loop.loss_history,
            series=tuple(self._series) if op == "forward" and judges else (),
            series_new=series_new and judges,
            series_unit="forwards" if self._full_batch else "epochs (mean loss)",
            first=self._first if judges else None,
            best=self._best if judges else None,
            grad_total=self._grad_total,
            grad_total_max=self._grad_total_max,
            forward_index=self._forward_index if op != "forward" else index,
            backward_index=self._backward_index,
            changed_index=changed,
            last_step_index=self._last_step_index,
            backward_since_step=self._backward_since_step,
            last_zero_index=self._last_zero_index,
            scheduler_stepped=stepped,
            has_scheduler=sched is not None,
            nonfinite=frozenset(k for c, k in self._active if c == "non-finite" and k)
            if self._active
            else frozenset(),
            text=_texter(loop),
            params_norm=_normer(loop),
            **facts,
            evals=_evals(loop) if op == "evaluate" else (),
            hyper_set=self._hyper_set(loop) if op == "set" else (),
        )

    def _hyper_set(self, loop: LoopState) -> tuple[tuple[int, str, Any], ...]:
        """What a set op changed: (group, key, new value), compared with before it."""
        before, self._hyper_before = self._hyper_before, []
        return tuple(
            (i, key, loop.param_groups[i][key])
            for i, (was, now) in enumerate(zip(before, _hypers(loop), strict=False))
            for key, text in now.items()
            if was.get(key) != text
        )

    _SERIES = ("_series", "_first", "_best", "_epoch", "_epoch_sum", "_epoch_count")

    def _use_source(self, loop: LoopState) -> None:
        """Make the series of the loss's source current. A driver whose losses come from
        several sources (a traced GAN's discriminator and generator losses, told apart by the
        line of their backward) names it in `loop.loss_source`; each source has its own
        series, first and best loss, so that the loss rules never compare one with another."""
        source = str(getattr(loop, "loss_source", ""))
        if source == self._source:
            return
        self._sources[self._source] = tuple(getattr(self, k) for k in self._SERIES)
        parked = self._sources.pop(source, None)
        if parked is None:
            maxlen = self._series.maxlen
            parked = (deque(maxlen=maxlen), None, None, None, 0.0, 0)
        for k, v in zip(self._SERIES, parked, strict=True):
            setattr(self, k, v)
        self._source = source
        self._probes.use_source(source)

    def _extend_series(self, loop: LoopState, loss: float) -> bool:
        obj = -loss if self._maximize else loss
        if self._full_batch:
            self._series.append(obj)
            return True
        new = False
        if self._epoch is not None and loop.epoch != self._epoch and self._epoch_count:
            self._series.append(self._epoch_sum / self._epoch_count)
            self._epoch_sum, self._epoch_count = 0.0, 0
            new = True
        self._epoch = loop.epoch
        self._epoch_sum += obj
        self._epoch_count += 1
        return new

    def _remember(self, loop: LoopState, ctx: Context) -> None:
        if ctx.error is not None:
            return
        if ctx.op == "forward" and ctx.loss is not None and ctx.loss_shape is not None:
            self._forward_index = ctx.op_index
            self._forward_versions = version_sum(t.tensor for t in loop.tracks)
            self._backward_index = None
            self._changed_index = None
            if math.isfinite(ctx.loss):
                obj = -ctx.loss if self._maximize else ctx.loss
                if self._first is None:
                    self._first = obj
                self._best = obj if self._best is None else min(self._best, obj)
        elif ctx.op == "forward":
            self._forward_index = ctx.op_index
            self._backward_index = self._changed_index = None
        elif ctx.op == "backward":
            self._backward_index = ctx.op_index
            self._backward_since_step = True
            fresh = [p for p in ctx.params if p.received]
            self._probes.remember_grads(
                {p.name: p.grad_norm for p in ctx.params if p.grad_norm is not None}
            )
            th = self.thresholds
            for p in fresh:
                norm = p.grad_norm
                if p.accumulated == 1 and norm is not None and math.isfinite(norm) and norm > 0:
                    window = self._windows.setdefault(p.name, deque(maxlen=th.grad_window))
                    window.append(norm)
            if fresh and all(p.accumulated == 1 for p in fresh):
                total = math.sqrt(math.fsum((p.grad_norm or 0.0) ** 2 for p in fresh))
                if math.isfinite(total):
                    self._grad_total = total
                    self._grad_total_max = max(self._grad_total_max, total)
        elif ctx.op == "step":
            self._last_step_index = ctx.op_index
            self._backward_since_step = False
            versions = version_sum(t.tensor for t in loop.tracks)
            if (
                self._forward_index is not None
                and self._changed_index is None
                and versions != self._forward_versions
            ):
                self._changed_index = ctx.op_index
        elif ctx.op == "zero_grad":
            self._last_zero_index = ctx.op_index
        elif ctx.op == "set":
            for group, key, value in ctx.hyper_set:
                if key == "lr":
                    self._probes.lr_set(group, float(value))


def _evals(loop: LoopState) -> tuple[tuple[float, float | None], ...]:
    """The driver's evaluations (the Session's; a traced script has none)."""
    series = getattr(loop, "evaluation_series", None)
    return tuple(series()) if callable(series) else ()


def _hypers(loop: LoopState) -> list[dict[str, str]]:
    """Each param group's hyperparameters by their repr (tensors and tuples compare)."""
    return [{k: repr(v) for k, v in g.items() if k != "params"} for g in loop.param_groups]


def _first_lr(loop: LoopState) -> float:
    groups = loop.param_groups
    return float(groups[0].get("lr", math.nan)) if groups else math.nan


def _texter(loop: LoopState) -> Texter:
    def text(name: str, what: str, limit: int = 4) -> str:
        track = next((t for t in loop.tracks if t.name == name), None)
        if track is None:
            return "?"
        tensor = track.tensor.grad if what == "grad" else track.tensor
        return fmt.tensor(view(tensor), limit=limit)

    return text


def _normer(loop: LoopState) -> Callable[[], float]:
    def norm() -> float:
        tensors = [t.tensor.detach() for t in loop.tracks if t.tensor.is_floating_point()]
        if not tensors:
            return 0.0
        return math.sqrt(math.fsum(float(n) ** 2 for n in torch._foreach_norm(tensors)))

    return norm


def _full_batch(scenario: Scenario) -> bool:
    """Every forward sees the same data: no `data`, or `data` of exactly one batch."""
    return scenario.data is None or batch_count(scenario.data) == 1


def _thresholds(scenario: Scenario) -> Thresholds:
    try:
        return Thresholds.from_config(scenario.config)
    except ValueError as e:
        line = scenario.config_line
        raise ScenarioError(
            str(scenario.path),
            line,
            f"optdbg_config: {e}",
            "optdbg_config = {...} with detector thresholds (see optdbg.engine.pitfalls), "
            'e.g. {"plateau_patience": 100, "silence": ["plateau"]}',
            "correct the value, or remove the key to use the default",
            source_line(str(scenario.path), line),
        ) from None
