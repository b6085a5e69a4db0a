"""The facts of the second catalogue, gathered around each op without changing a value.

What each probe touches: module attributes (`training`, `inplace`); one amax over the batch
per nn.ReLU output (a forward hook that returns nothing, active only during the forward
op); the loss's graph near its root (node names, saved tensors' shapes); the scenario's
globals (identity checks); `.grad` version counters (integers); during step, PyTorch's
global optimizer step hooks (they record, never modify); and, around a step, each weight's
values at a fixed sample of at most `SAMPLE` positions (copied before, read after, one fused
norm of the samples and their deltas).
"""

from __future__ import annotations

import itertools
import math
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_hook
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)

from ..errors import failure
from ..events import OpError
from ..norms import floats
from .context import GradRewrite, Inplace, LossFacts, OptimizerStep, Relu
from .lossgraph import inplace, loss_facts
from .thresholds import Thresholds

if TYPE_CHECKING:
    from ..loop import LoopState

_MODES = (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._BatchNorm)
_INPLACE_ERROR = "modified by an inplace operation"

Versions = tuple[tuple[int, int] | None, ...]


class Probes:
    """Gathers the facts for eval-mode-training, softmax-before-ce, loss-broadcast,
    init-loss-mismatch, loss-at-chance, clip-order, update-ratio, dead-relu,
    decay-on-bias-norm, loss-history-retained, param-replaced, inplace-saved-tensor,
    optimizer-recreated and lr-schedule-odd."""

    def __init__(
        self,
        loop: LoopState,
        thresholds: Thresholds,
        namespace: Mapping[str, Any],
        late_forward: bool = False,
    ) -> None:
        """`namespace`: the code's variables (its modules among them); `late_forward`: the
        driver reports each forward after it ran (a traced script computes its losses between
        ops), so the ReLU probe watches between ops and reports, at each forward, what it saw
        since the previous one."""
        self.thresholds = thresholds
        self.error: str | None = None
        """The last exception a step hook raised (reported by the runner, never raised)."""
        self._namespace = namespace
        self._late = late_forward
        self._in_forward = False
        self._relus: dict[str, Relu] = {}
        self._hooks: list[Any] = []
        try:
            self._modules = _modules(namespace)
            self._modes = [(n, m) for n, m in self._modules if _has_mode(m)]
            self._functions = _forward_functions(namespace, self._modules)
            self._watch_relus([(n, m) for n, m in self._modules if type(m) is nn.ReLU])
        except Exception as e:  # a scenario's modules may be anything: never break its load
            self._modules, self._modes, self._functions = [], [], []
            self.error = f"the scenario's modules could not be read: {failure(e)}"
        self._held: dict[str, Any] = {}
        self._forwards = 0
        self._chance: deque[float] = deque(maxlen=thresholds.chance_patience)
        self._chances: dict[str, deque[float]] = {}
        """The chance windows of the loss sources not current (see `use_source`)."""
        self._source = ""
        self._versions: Versions = ()
        self._last_op = "load"
        self._grad_norms: dict[str, float] = {}
        self._clips: deque[bool] = deque(maxlen=thresholds.clip_window)
        self._clipped = False
        """Clipping was measured since the last step's facts."""
        self._streaks: dict[str, int] = {}
        self._stepped_by: dict[int, tuple[int, str, bool]] = {}
        """id(param) -> (serial, class, stateful) of the optimizer that stepped it last."""
        self._fresh_count = 0
        self._lr_first: dict[int, float] = {}
        self._lr_set: dict[int, float] = {}
        """Per group, the lr a `set` op gave it last: its reference from then on."""
        self._lr_zero = 0
        self._loop: LoopState | None = None
        self._fresh: dict[int, bool] = {}
        self._samples: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        """name -> (the weight's sample before this step, the weight)."""
        self._positions: dict[tuple[int, torch.device], torch.Tensor] = {}
        """(numel, device) -> the sample's positions (fixed: each step measures the same)."""
        self._steps: list[OptimizerStep] = []
        self._at_update: tuple[Versions, Versions] | None = None
        self._rewrite_ratio: float | None = None

    # ------------------------------------------------------------- history protocol

    _STATE = (
        "_forwards",
        "_versions",
        "_last_op",
        "_grad_norms",
        "_streaks",
        "_stepped_by",
        "_fresh_count",
        "_lr_first",
        "_lr_set",
        "_lr_zero",
    )

    def state(self) -> dict[str, Any]:
        out = {k: _copy(getattr(self, k)) for k in self._STATE}
        out["_chance"] = tuple(self._chance)
        out["_clips"] = tuple(self._clips)
        return out

    def restore(self, state: Mapping[str, Any]) -> None:
        for k in self._STATE:
            setattr(self, k, _copy(state[k]))
        self._chance = deque(state["_chance"], maxlen=self._chance.maxlen)
        self._clips = deque(state["_clips"], maxlen=self._clips.maxlen)

    # ------------------------------------------------------------- at load

    def load_facts(self, loop: LoopState) -> dict[str, Any]:
        names = {id(t.tensor): t.name for t in loop.tracks}
        decay = []
        for i, group in enumerate(loop.param_groups):
            wd = float(group.get("weight_decay", 0.0) or 0.0)
            flat = tuple(names.get(id(p), "?") for p in group.get("params", ()) if p.dim() == 1)
            if wd > 0 and flat:
                decay.append((i, wd, flat))
        return {"decay_1d": tuple(decay)}

    # ------------------------------------------------------------- around an op

    def before(self, loop: LoopState, op: str) -> dict[str, Any]:
        """Called before an op; returns the facts of what happened since the previous op (a
        traced script's own code runs between ops)."""
        now = _versions(loop)
        facts: dict[str, Any] = {}
        # not before forward or backward: a driver may report those after the real backward
        # ran (the tracer does), and backward accumulates into .grad in place
        if self._versions and now != self._versions and op not in ("forward", "backward"):
            changed = _changed(loop, self._versions, now)
            if changed:
                facts["grad_rewrites"] = (self._rewrite(loop, self._when(self._last_op), changed),)
        self._versions = now
        if op == "forward":
            self._in_forward = True
            if not self._late:  # else: what the hooks saw since the previous forward
                self._relus = {}
            self._held = self._graphs_held(loop)
        elif op == "step":
            self._steps = []
            self._at_update = None
            self._rewrite_ratio = None
            self._fresh = {}
            self._samples = {}
            self._loop = loop
            _ACTIVE.append(self)
        return facts

    def after(self, loop: LoopState, op: str, error: OpError | None) -> dict[str, Any]:
        """The facts of the op just performed (the runner puts them in the Context)."""
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        self._loop = None
        self._in_forward = False
        facts: dict[str, Any] = {}
        now = _versions(loop)
        if error is None and op == "forward" and loop.loss is not None:
            facts.update(self._forward_facts(loop, now))
        elif error is None and op == "step":
            facts.update(self._step_facts(loop, now))
        elif op == "backward" and error is not None and _INPLACE_ERROR in error.message:
            facts["inplace"] = self.inplace(error.message)
        replaced = self._replaced(loop)
        if replaced:
            facts["replaced"] = replaced
        self._versions = now
        if error is None and op != "set":  # a hyperparameter set is no step of the loop
            self._last_op = op
        return facts

    def use_source(self, source: str) -> None:
        """The coming losses are `source`'s: loss-at-chance watches each source apart."""
        if source != self._source:
            self._chances[self._source] = self._chance
            fresh = deque[float](maxlen=self._chance.maxlen)
            self._chance = self._chances.pop(source, fresh)
            self._source = source

    def lr_set(self, group: int, lr: float) -> None:
        """The user set group `group`'s lr: lr-schedule-odd measures from it from now on."""
        self._lr_set[group] = lr

    def remember_grads(self, norms: Mapping[str, float]) -> None:
        """The gradient norms a backward left (the runner measured them)."""
        self._grad_norms = dict(norms)

    def inplace(self, message: str) -> Inplace:
        return inplace(message, self._functions, self._modules)

    # ------------------------------------------------------------- forward

    def _forward_facts(self, loop: LoopState, now: Versions) -> dict[str, Any]:
        loss = loop.loss
        assert loss is not None
        facts: dict[str, Any] = {}
        relus, self._relus = self._relus, {}
        if self._versions and now != self._versions:
            changed = _changed(loop, self._versions, now)
            if changed:
                facts["grad_rewrites"] = (GradRewrite("before-backward", changed),)
        if not loss.requires_grad:
            return facts
        self._forwards += 1
        facts["first_forward"] = self._forwards == 1
        facts["eval_modules"] = tuple(n for n, m in self._modes if not m.training)
        lf = loss_facts(loss)
        facts["loss_facts"] = lf
        facts["relus"] = tuple(relus.values())
        facts["retained"] = self._retained(loop)
        self._held = {}
        value = loop.loss_value
        if lf is not None and lf.chance and value is not None and math.isfinite(value):
            self._chance.append(value / lf.chance)
            judges = getattr(loop, "judges_loss", True)
            if len(self._chance) == self._chance.maxlen and judges:
                facts["chance_window"] = tuple(self._chance)
        else:
            self._chance.clear()
        return facts

    def _watch_relus(self, relus: list[tuple[str, nn.Module]]) -> None:
        """A forward hook on each nn.ReLU; for a late forward, one global hook instead (the
        script's modules stay as they were: a module holding a hook no longer pickles)."""
        if not relus:
            return
        if not self._late:
            for name, module in relus:
                self._hooks.append(module.register_forward_hook(self._relu_hook(name)))
            return
        names = {id(m): n for n, m in relus}

        def hook(module: nn.Module, args: Any, output: Any) -> None:
            name = names.get(id(module))
            # a forward without autograd (evaluation) trains nothing: not the loss's
            if name is not None and torch.is_grad_enabled() and not torch.compiler.is_compiling():
                self._observe_relu(name, output)

        self._hooks.append(register_module_forward_hook(hook))

    def close(self) -> None:
        """Remove the hooks from the code's modules (the driver is done with them)."""
        for handle in self._hooks:
            handle.remove()
        self._hooks = []

    def _relu_hook(self, name: str) -> Callable[[nn.Module, Any, Any], None]:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            if self._in_forward:
                self._observe_relu(name, output)

        return hook

    def _observe_relu(self, name: str, output: Any) -> None:
        """The layer's dead units on this batch. A unit is dead only if it outputs 0 for the
        first input: when too few do for dead-relu to fire, their count (an upper bound) is
        all that is taken, and the batch is not reduced."""
        if not isinstance(output, torch.Tensor) or output.dim() < 2 or output.shape[0] < 2:
            return
        units = math.prod(output.shape[1:])
        out = output.detach()  # read only: no autograd
        dead = units - int(torch.count_nonzero(out[0]))
        if dead >= self.thresholds.dead_relu_fraction * units:
            dead = int(torch.count_nonzero(out.amax(dim=0) <= 0))
        seen = self._relus.get(name)
        if seen is None or dead / units > seen.dead / seen.units:
            self._relus[name] = Relu(name, dead, units, int(output.shape[0]))

    def _graphs_held(self, loop: LoopState) -> dict[str, Any]:
        """Per global: the grad_fn of the graph it holds (a tensor's, a list's last tensor's)."""
        held = {}
        for name, value in self._namespace.items():
            fn = _held_fn(value)
            if fn is not None:
                held[name] = fn
        return held

    def _retained(self, loop: LoopState) -> tuple[tuple[str, str], ...]:
        out = []
        params = {t.name for t in loop.tracks}
        for name, before in self._held.items():
            if name in params:  # a rebound parameter: param-replaced says it
                continue
            value = self._namespace.get(name)
            if isinstance(value, torch.Tensor) and value.grad_fn is not None:
                if value is not loop.loss and before in _fn_inputs(value.grad_fn):
                    out.append(
                        (
                            name,
                            f"{name} = {name} + loss: {type(value).__name__} with "
                            f"grad_fn {value.grad_fn.name()}",
                        )
                    )
            elif isinstance(value, list | tuple) and len(value) >= 2:
                tail = [_held_fn(v) for v in value[-2:]]
                if before in tail and _held_fn(value) is not before:
                    kept = sum(1 for v in value if isinstance(v, torch.Tensor) and v.grad_fn)
                    out.append((name, f"{name} holds {kept} loss tensors with their graphs"))
        return tuple(out)

    # ------------------------------------------------------------- step

    def on_pre_step(self, optimizer: torch.optim.Optimizer) -> None:
        """PyTorch is about to run `optimizer.step()` during this probe's step op."""
        loop = self._loop
        if loop is None:
            return
        now = _versions(loop)
        if self._at_update is None:
            if now != self._versions:
                changed = _changed(loop, self._versions, now)
                if changed:
                    self._rewrite_ratio = self._ratio(loop, changed)
            self._at_update = (now, now)
            self._samples = _weight_samples(loop, self._positions)  # as the update finds them
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        self._fresh[id(optimizer)] = all(not optimizer.state.get(p) for p in params)

    def on_post_step(self, optimizer: torch.optim.Optimizer) -> None:
        """`optimizer.step()` just ran during this probe's step op."""
        loop = self._loop
        if loop is None:
            return
        if self._at_update is not None:
            self._at_update = (self._at_update[0], _versions(loop))
        serial = _serial(optimizer)
        name = type(optimizer).__name__
        params = [p for g in optimizer.param_groups for p in g["params"]]
        stateful = any(optimizer.state.get(p) for p in params)
        fresh = self._fresh.pop(id(optimizer), None)
        if fresh is None:  # its pre-step hook did not run
            fresh = _step_of(optimizer, params) == 1
        previous = None
        other = _LAST.get(id(params[0])) if params else None
        if fresh and params:
            mine = self._stepped_by.get(id(params[0]))
            if other is not None and other[0]() is params[0] and other[1] != serial and other[3]:
                previous = f"another {other[2]}"
            elif mine is not None and mine[0] == serial and mine[2]:
                previous = "reset"
        count = other[4] if other is not None and other[0]() is params[0] else 0
        if previous is not None:
            count += 1
            self._fresh_count = count
        mark = (serial, name, stateful)
        for p in params:  # rewritten only where it changed (no weak reference per step)
            key = id(p)
            self._stepped_by[key] = mark
            last = _LAST.get(key)
            if last is None or last[0]() is not p or last[1:] != (*mark, count):
                _LAST[key] = (weakref.ref(p), *mark, count)
        self._steps.append(
            OptimizerStep(name, serial, fresh, stateful, previous, self._fresh_count)
        )

    def _step_facts(self, loop: LoopState, now: Versions) -> dict[str, Any]:
        facts: dict[str, Any] = {"optimizer_steps": tuple(self._steps)}
        rewrites = []
        if self._at_update is not None:
            _, after_update = self._at_update
            changed = _changed(loop, self._versions, self._at_update[0])
            if changed:
                rewrites.append(GradRewrite("before-step", changed, self._rewrite_ratio))
            if now != after_update:
                rewrites.append(GradRewrite("after-step", _changed(loop, after_update, now)))
        elif now != self._versions:  # a manual update: where it clipped is not known
            changed = _changed(loop, self._versions, now)
            if changed:
                rewrites.append(GradRewrite("before-step", changed, self._ratio(loop, changed)))
        for r in rewrites:
            if r.when == "before-step" and r.ratio is not None:
                self._clips.append(r.ratio < 1 - 1e-6)
                self._clipped = True
        if self._clipped and len(self._clips) == self._clips.maxlen:
            facts["clip_recent"] = tuple(self._clips)
        self._clipped = False
        if rewrites:
            facts["grad_rewrites"] = tuple(rewrites)
        facts["ratios"] = self._update_ratios()
        facts.update(self._lr_facts(loop))
        return facts

    def _ratio(self, loop: LoopState, names: tuple[str, ...]) -> float | None:
        """Norm of these gradients now over their norm after the last backward."""
        grads = [t.tensor.grad for t in loop.tracks if t.name in names]
        before = [self._grad_norms.get(n) for n in names]
        if any(g is None for g in grads) or any(b is None for b in before):
            return None
        norms = torch._foreach_norm([g.detach() for g in grads if g is not None])
        after = math.sqrt(math.fsum(float(n) ** 2 for n in norms))
        total = math.sqrt(math.fsum(b * b for b in before if b is not None))
        return after / total if total > 0 and math.isfinite(total) else None

    def _rewrite(self, loop: LoopState, when: str, changed: tuple[str, ...]) -> GradRewrite:
        ratio = self._ratio(loop, changed) if when == "before-step" else None
        if ratio is not None:
            self._clips.append(ratio < 1 - 1e-6)
            self._clipped = True
        return GradRewrite(when, changed, ratio)

    @staticmethod
    def _when(last_op: str) -> str:
        return {"backward": "before-step", "step": "after-step"}.get(last_op, "before-backward")

    def _update_ratios(self) -> dict[str, tuple[float, int]]:
        """Each moved weight's (ratio, streak): |update| / |weight| on its sample (see
        `SAMPLE`), where the weight was before the step."""
        samples, self._samples = self._samples, {}
        if not samples:
            return {}
        names = list(samples)
        befores = [samples[n][0] for n in names]
        afters = [_sample(samples[n][1], self._positions) for n in names]
        deltas = list(torch._foreach_sub(afters, befores))
        measured = floats(list(torch._foreach_norm(deltas + befores)))
        sizes, steps = measured[len(names) :], measured[: len(names)]
        th = self.thresholds
        out = {}
        for i, name in enumerate(names):
            size, step = sizes[i], steps[i]
            if not (size > 0 and math.isfinite(size) and math.isfinite(step)):
                self._streaks.pop(name, None)
                continue
            ratio = step / size
            streak = self._streaks.get(name, 0)
            if ratio > th.update_ratio_high:
                streak = streak + 1 if streak > 0 else 1
            elif ratio < th.update_ratio_low:
                streak = streak - 1 if streak < 0 else -1
            else:
                streak = 0
            self._streaks[name] = streak
            out[name] = (ratio, streak)
        return out

    def _lr_facts(self, loop: LoopState) -> dict[str, Any]:
        refs = []
        zero = False
        for i, group in enumerate(loop.param_groups):
            if "lr" not in group:
                continue
            lr = float(group["lr"])
            first = self._lr_first.setdefault(i, lr)
            ref = self._lr_set.get(i)
            if ref is None:
                ref = max(float(group.get("initial_lr", first)), float(group.get("max_lr", 0.0)))
            refs.append(ref)
            zero = zero or (ref > 0 and lr < self.thresholds.lr_zero_ratio * ref)
        self._lr_zero = self._lr_zero + 1 if zero else 0
        return {"lr_ref": tuple(refs), "lr_zero_steps": self._lr_zero}

    # ------------------------------------------------------------- every op

    def _replaced(self, loop: LoopState) -> tuple[tuple[str, str], ...]:
        out = []
        for track in loop.tracks:
            name = track.name
            if "." in name or name not in self._namespace:
                continue
            value = self._namespace[name]
            if value is track.tensor:
                continue
            if isinstance(value, torch.Tensor):
                what = (
                    f"a non-leaf tensor (grad_fn {value.grad_fn.name()})"
                    if value.grad_fn is not None
                    else "another tensor"
                )
            else:
                what = f"a {type(value).__name__}"
            out.append((name, what))
        return tuple(out)


SAMPLE = 16_384
BLOCK = 256
"""update-ratio measures a weight with more values than SAMPLE on SAMPLE of them: runs of
BLOCK neighbours (a kilobyte each) at fixed random places, drawn once per size from a
generator of its own (never the code's). A ratio is then within a few percent of the whole
weight's, against bounds four orders of magnitude apart, and its cost does not grow with the
model: copying whole weights cost as much memory traffic as an SGD step (and was skipped for
big models), scattered single values touch nearly every cache line all the same. Right after
a step the weights are out of the core's cache: runs of 256 values, which the prefetcher
streams, are gathered in half the time runs of 64 took (25 against 50 us a weight)."""

_ACTIVE: list[Probes] = []
"""The probes whose step op is running: PyTorch's global step hooks report to them."""

_SERIALS: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_COUNTER = itertools.count(1)
_LAST: dict[int, tuple[weakref.ref[torch.Tensor], int, str, bool, int]] = {}
"""id(param) -> (the param, serial, class, stateful, recreations so far) of the optimizer
that stepped it last, process-wide: a traced script's new optimizer gets new detectors, yet
is seen replacing one (and optimizer-recreated fires on the first recreation only)."""


def _serial(optimizer: Any) -> int:
    serial = _SERIALS.get(optimizer)
    if serial is None:
        serial = _SERIALS[optimizer] = next(_COUNTER)
    return serial


def _step_of(optimizer: torch.optim.Optimizer, params: list[torch.Tensor]) -> int | None:
    state = optimizer.state.get(params[0]) if params else None
    step = state.get("step") if state else None
    return int(step) if step is not None else None


def _weight_samples(
    loop: LoopState, positions: dict[tuple[int, torch.device], torch.Tensor]
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """name -> (the sample of a weight (2-d and up) about to step, the weight)."""
    return {
        t.name: (_sample(t.tensor, positions), t.tensor)
        for t in loop.tracks
        if t.tensor.dim() >= 2 and t.tensor.grad is not None and t.tensor.layout == torch.strided
    }


def _sample(
    weight: torch.Tensor, positions: dict[tuple[int, torch.device], torch.Tensor]
) -> torch.Tensor:
    """A copy of the weight's values at its sample's places (all of them when small)."""
    flat = weight.detach().reshape(-1)  # a view, except for a weight not laid out in order
    n = flat.numel()
    if n <= SAMPLE:
        return flat.clone()
    key = (n, flat.device)
    rows = positions.get(key)
    if rows is None:
        generator = torch.Generator().manual_seed(n)
        drawn = torch.randperm(n // BLOCK, generator=generator)[: SAMPLE // BLOCK]
        rows = positions[key] = drawn.sort().values.to(flat.device)
    return flat[: n - n % BLOCK].view(-1, BLOCK).index_select(0, rows)


def _pre_hook(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    for probes in _ACTIVE:
        try:
            probes.on_pre_step(optimizer)
        except Exception as e:  # observing must never break the user's step
            probes.error = failure(e)


def _post_hook(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    for probes in _ACTIVE:
        try:
            probes.on_post_step(optimizer)
        except Exception as e:  # observing must never break the user's step
            probes.error = failure(e)


# Registered once, at import: registering inside a step (a tracer's hook opens the detectors
# of an optimizer it meets) would change PyTorch's hook dict while it iterates it.
register_optimizer_step_pre_hook(_pre_hook)
register_optimizer_step_post_hook(_post_hook)


def _copy(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else value


def _versions(loop: LoopState) -> Versions:
    out = []
    for t in loop.tracks:
        g = t.tensor.grad
        out.append(None if g is None else (id(g), g._version))
    return tuple(out)


def _changed(loop: LoopState, before: Versions, after: Versions) -> tuple[str, ...]:
    """Parameters whose (same) .grad tensor was modified in place between two readings."""
    out = []
    for t, a, b in zip(loop.tracks, before, after, strict=False):
        if a is not None and b is not None and a[0] == b[0] and a[1] != b[1]:
            out.append(t.name)
    return tuple(out)


def _held_fn(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.grad_fn
    if isinstance(value, list | tuple) and value and isinstance(value[-1], torch.Tensor):
        return value[-1].grad_fn
    return None


def _fn_inputs(fn: Any) -> list[Any]:
    return [n for n, _ in fn.next_functions if n is not None]


def _modules(namespace: Mapping[str, Any]) -> list[tuple[str, nn.Module]]:
    out: list[tuple[str, nn.Module]] = []
    seen: set[int] = set()
    for name, value in namespace.items():
        if isinstance(value, nn.Module) and not name.startswith("_"):
            for sub, module in value.named_modules(prefix=name):
                if id(module) not in seen:
                    seen.add(id(module))
                    out.append((sub, module))
    return out


def _has_mode(module: nn.Module) -> bool:
    if isinstance(module, nn.modules.instancenorm._InstanceNorm):
        return bool(module.track_running_stats)
    return isinstance(module, _MODES)


def _forward_functions(
    namespace: Mapping[str, Any], modules: list[tuple[str, nn.Module]]
) -> list[Any]:
    """The scenario's forward and the forward methods of its own module classes."""
    out = []
    fn = namespace.get("forward")
    if callable(fn):
        out.append(fn)
    for _, module in modules:
        cls = type(module)
        if not cls.__module__.startswith("torch.") and cls.forward not in out:
            out.append(cls.forward)
    return out


__all__ = ["LossFacts", "Probes"]
