"""The tracer: the second driver of the loop state, whose ops are a running script's own calls.

While installed, every `Tensor.backward()` / `torch.autograd.backward()` and every `step()`
and `zero_grad()` of every `torch.optim.Optimizer` is an op: the call itself runs exactly as
without optdbg (same arguments, same result, same exception), and the tracer records what it
did, from the script's line that made it, and runs the pitfall detectors on it.

How: `Tensor.backward` and `torch.autograd.backward` are wrapped for the duration (one op per
outermost call), `Optimizer.__init__` is wrapped to discover optimizers (and their
parameters, named from the script's variables) as they are created, and `step` and
`zero_grad` are wrapped on the optimizer classes, outside PyTorch's own step hooks (never on
the instances: an optimizer pickles as before; LBFGS's closure backwards are ops inside its
step). Which parameters a backward reached is read afterwards from their `.grad`'s identity
and version counter: a backward runs no Python hook of optdbg's, as in a plain loop.

Each optimizer is a loop of its own for the detectors (a GAN's discriminator and generator
each have their steps, zero_grads and loss series); a backward goes to the optimizers whose
parameters received a gradient, a step or zero_grad to its optimizer.

`grad-accumulated` follows how scripts use gradients: summing several backward passes before
a step is a technique (gradient accumulation), and a backward that also reaches parameters of
an optimizer that will zero them first (a GAN's generator loss through the discriminator) is
harmless. The mistake is a step using a gradient that holds passes from before an earlier
step that already used them: no zero_grad in between. So a backward adding to a gradient a
step already used is a candidate, warned (on that backward) once a step uses the sum, and
dropped when the gradient is cleared first. Records wait for their warnings to be known:
`on_final` receives them in order, at most one iteration late.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from .. import fmt
from ..errors import failure
from ..events import Event, Finding, OpError
from ..explain import explain
from ..graph import FlowRecorder, Graph, extract_nodes, with_flow
from ..loop import GradState, grad_received, grad_state
from ..pitfalls import Detectors, Thresholds
from ..snapshot import ParamSnapshot, Snapshot, TensorView, plain, view
from . import naming
from .ddp import DdpCheck, ddp_params
from .detail import StepCopies, StepInfo
from .naming import Where


class TraceStopped(BaseException):
    """Raised inside the script at its next op to stop it (`--max-ops`, `q` in the TUI).

    A BaseException, so that the script's `except Exception` does not swallow it."""


@dataclass
class _Track:
    """One parameter of the script's optimizers and its gradient bookkeeping."""

    name: str
    tensor: torch.Tensor
    group: int
    """Index of its param group among every optimizer's groups."""
    owners: list[int]
    """Indices of the optimizers holding it."""
    accumulated: int = 0
    used_by: int | None = None
    """Event index of a step that used the current .grad (None: unused since cleared)."""
    candidate: tuple[int, int, int] | None = None
    """(backward event index, passes the used gradient held, the step that used it) of an
    addition to a used gradient, until a step uses the sum (warned) or the gradient is
    cleared (dropped)."""
    seen: tuple[int, int] | None = None
    """(id, version) of .grad as the last op left it: a change means the script changed it."""
    sources: set[str] = field(default_factory=set)
    """The loss sources (lines of backward calls) whose gradients .grad holds."""


class _OptimizerLoop:
    """One optimizer seen as a loop, for its detectors (the `LoopState` they read)."""

    def __init__(self, tracer: Tracer, optimizer: torch.optim.Optimizer) -> None:
        self._tracer = tracer
        self.optimizer = optimizer
        self.tracks: list[_Track] = []
        self.loss: torch.Tensor | None = None
        self.loss_value: float | None = None
        self.loss_source = ""
        """Where the latest loss's backward was called: each source has its own series."""
        self.judges_loss = True
        """The latest loss is this optimizer's (its steps use that source's gradients, or
        none has stepped since the source was first seen): the loss rules judge it here."""
        self.histories: dict[str, list[float]] = {}
        self.step_count = 0
        self.epoch = 0
        self.scheduler: Any | None = None

    @property
    def loss_history(self) -> list[float]:
        """The losses of the latest loss's source (a GAN's errD_real, errD_fake and errG
        apart)."""
        return self.histories.setdefault(self.loss_source, [])

    @property
    def received(self) -> dict[str, bool | None]:
        return self._tracer.received

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    @property
    def optimizer_stepped(self) -> bool:
        return bool(getattr(self.optimizer, "_opt_called", False))

    @property
    def events(self) -> list[Event]:
        return self._tracer.events


@dataclass
class _Optimizer:
    index: int
    optimizer: torch.optim.Optimizer
    name: str | None
    loop: _OptimizerLoop
    detectors: Detectors

    @property
    def label(self) -> str:
        return self.name or str(self.index)


@dataclass(frozen=True)
class Pending:
    """The op the script is about to perform (what a paused debugger shows)."""

    index: int
    op: str
    where: Where
    optimizer: str | None
    loss: float | None


@dataclass
class TracedOp:
    """One op of the script: its event, where it was made, and its JSON record."""

    event: Event
    where: Where
    optimizer: str | None
    record: dict[str, Any] | None = None

    def final_record(self) -> dict[str, Any] | None:
        if self.record is None:
            return None
        self.record["warnings"] = [w.to_json() for w in self.event.warnings]
        return self.record


_LISTED = 6
"""Parameters named in one grad-accumulated message (the rest counted)."""

_local = threading.local()
_MISSING = object()


class Tracer:
    """Observes the ops of the code that runs while it is installed (`with tracer:`)."""

    def __init__(
        self,
        *,
        records: bool = True,
        rank: int | None = None,
        max_ops: int | None = None,
        on_op: Callable[[TracedOp], None] | None = None,
        on_final: Callable[[TracedOp], None] | None = None,
        pause: Callable[[Pending], None] | None = None,
        thresholds: Thresholds | None = None,
        detail: bool = False,
    ) -> None:
        self.records = records
        self.detail = detail
        """Summaries with values and each loss's graph, for the TUI; headless runs skip
        the norms and the graphs."""
        self.graph: Graph | None = None
        """The autograd graph of the latest loss (with `detail`), extracted before its
        backward ran (while its saved tensors exist)."""
        self.graph_error: str | None = None
        """Why the latest loss has no graph, or its graph no gradient flow (the script's op
        itself completed); None when it has."""
        self._failures: list[str] = []
        """The graph watcher's failures during the op running now (its event's
        `observer_errors`)."""
        self.loss_name: str | None = None
        """With `detail`: the script's variable holding the latest loss (`errD_real`)."""
        self.loss_series: dict[str, list[float]] = {}
        """With `detail`: each loss's values by its name (a GAN's errD and errG apart)."""
        self.last_steps: dict[str, StepInfo] = {}
        """With `detail`: each optimizer's latest step, with its numbers, by label."""
        self._graph_fns: list[Any] = []
        self._ddp_params: set[int] = set()
        """id() of the parameters of the DistributedDataParallel modules seen."""
        self._ddp_scanned = False
        self.ddp: DdpCheck | None = None
        """Under a process group of several ranks (found at the first op after the script
        initialised it): the comparison with the other ranks (see `ddp`)."""
        self.rank = rank
        self.max_ops = max_ops
        self.on_op = on_op
        """Called right after each op (its warnings may still grow, see the module doc)."""
        self.on_final = on_final
        """Called for each op, in order, once its warnings are known."""
        self.pause = pause
        """Called before each op in the script's thread; may block, or raise TraceStopped."""
        self.thresholds = thresholds or Thresholds()
        self.events: list[Event] = []
        self.ops: list[TracedOp] = []
        self.tracks: list[_Track] = []
        self.optimizers: list[_Optimizer] = []
        self.received: dict[str, bool | None] = {}
        """The parameters that received a gradient in the latest backward (None: into a
        fresh .grad, True: added to one)."""
        self.loss: torch.Tensor | None = None
        self.loss_value: float | None = None
        self.loss_history: list[float] = []
        self.step_count = 0
        self.forward_count = 0
        self.stop_requested = False
        """Set (from any thread) to stop the script at its next op."""
        self.stopped: str | None = None
        """Why the tracer stopped the script, once it did."""
        self._by_param: dict[int, _Track] = {}
        self._by_opt: dict[int, _Optimizer] = {}
        self._owners: dict[str, set[int]] = {}
        """Per loss source, the optimizers whose steps used its gradients."""
        self._open: deque[TracedOp] = deque()
        self._found: list[Finding] = []
        self._patched: list[tuple[Any, str, Any]] = []
        self._installed = False

    # ------------------------------------------------------------------ install

    def __enter__(self) -> Tracer:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    def install(self) -> None:
        if self._installed:
            return
        if getattr(_local, "tracer", None) is not None or _Global.tracer is not None:
            raise RuntimeError("another optdbg tracer is already installed")
        _Global.tracer = self
        self._installed = True
        tracer = self
        tensor_backward = torch.Tensor.backward
        autograd_backward = torch.autograd.backward
        init = torch.optim.Optimizer.__init__

        def backward(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            return tracer._backward(self, lambda: tensor_backward(self, *args, **kwargs))

        def autograd(tensors: Any, *args: Any, **kwargs: Any) -> Any:
            return tracer._backward(tensors, lambda: autograd_backward(tensors, *args, **kwargs))

        def optimizer_init(self: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **kwargs)
            tracer._register(self)

        self._patch(torch.Tensor, "backward", backward)
        self._patch(torch.autograd, "backward", autograd)
        self._patch(torch.optim.Optimizer, "__init__", optimizer_init)
        self._patch_zero_grad(torch.optim.Optimizer)
        for cls in _stepped_classes():  # optimizers made before: found at their first step
            self._patch_step(cls)
        if self.rank is not None:
            self._patch_ddp()

    def _patch_ddp(self) -> None:
        """Note the parameters of every DistributedDataParallel module the script wraps:
        the only ones whose gradients must be equal on every rank."""
        ddp = torch.nn.parallel.DistributedDataParallel
        init = ddp.__init__
        tracer = self

        def ddp_init(self: Any, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **kwargs)
            tracer._ddp_params.update(id(p) for p in self.parameters())

        self._patch(ddp, "__init__", ddp_init)

    def uninstall(self) -> None:
        """Restore PyTorch, remove the hooks, settle the last warnings and flush."""
        if not self._installed:
            return
        for owner, attr, original in reversed(self._patched):
            if original is _MISSING:
                delattr(owner, attr)
            else:
                setattr(owner, attr, original)
        self._patched = []
        for o in self.optimizers:
            if o.detectors is not None:  # None: its discovery failed half-way
                o.detectors.close()
        _Global.tracer = None
        self._installed = False
        for track in self.tracks:
            track.candidate = None
        if self.ddp is not None:
            self.attach(self.ddp.finish([o.label for o in self.optimizers]))
        self._flush()
        self.loss = None
        self._graph_fns = []
        for o in self.optimizers:
            o.loop.loss = None

    def _patch(self, owner: Any, attr: str, value: Any) -> None:
        self._patched.append((owner, attr, owner.__dict__.get(attr, _MISSING)))
        setattr(owner, attr, value)

    def _patch_step(self, cls: type) -> None:
        """Wrap the class's step (outside PyTorch's own step hooks, which observers may
        add and remove during the op); the instances stay untouched."""
        original = cls.step  # type: ignore[attr-defined]
        tracer = self

        @functools.wraps(original)  # keeps PyTorch's `hooked` mark: not wrapped twice
        def step(self: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> Any:
            return tracer._step(self, lambda: original(self, *args, **kwargs))

        self._patch(cls, "step", step)

    def _patch_zero_grad(self, cls: type) -> None:
        original = cls.__dict__["zero_grad"]
        tracer = self

        def zero_grad(self: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> Any:
            return tracer._zero_grad(self, lambda: original(self, *args, **kwargs))

        self._patch(cls, "zero_grad", zero_grad)

    # ------------------------------------------------------------------ LoopState

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [g for o in self.optimizers for g in o.optimizer.param_groups]

    @property
    def scheduler(self) -> Any | None:
        return None

    @property
    def optimizer_stepped(self) -> bool:
        return self.step_count > 0

    @property
    def epoch(self) -> int:
        return 0

    # ------------------------------------------------------------------ discovery

    def _register(self, optimizer: torch.optim.Optimizer) -> _Optimizer:
        """The optimizer's bookkeeping, created on first sight (parameters named from the
        script's frames); parameters added since (add_param_group) join it."""
        o = self._by_opt.get(id(optimizer))
        if o is None or o.optimizer is not optimizer:
            loop = _OptimizerLoop(self, optimizer)
            o = _Optimizer(len(self.optimizers), optimizer, None, loop, None)  # type: ignore[arg-type]
            self.optimizers.append(o)
            self._by_opt[id(optimizer)] = o
            self._add_params(o)
            o.detectors = Detectors(
                loop,
                self.thresholds,
                namespace=self._modules_of(optimizer),
                late_forward=True,
            )
            cls = type(optimizer)
            done = {attr for owner, attr, _ in self._patched if owner is cls}
            if "zero_grad" in cls.__dict__ and "zero_grad" not in done:
                self._patch_zero_grad(cls)
            if "step" not in done:
                self._patch_step(cls)
        elif sum(len(g["params"]) for g in optimizer.param_groups) != len(o.loop.tracks):
            self._add_params(o)
        return o

    @staticmethod
    def _modules_of(optimizer: torch.optim.Optimizer) -> dict[str, torch.nn.Module]:
        """The script's modules that the optimizer trains (eval-mode-training and dead-relu
        watch them)."""
        try:
            return naming.modules_of([p for g in optimizer.param_groups for p in g["params"]])
        except Exception:  # observing must never break the script
            return {}

    def _add_params(self, o: _Optimizer) -> None:
        known = {id(t.tensor) for t in o.loop.tracks}
        new = [p for g in o.optimizer.param_groups for p in g["params"] if id(p) not in known]
        names = naming.param_names(new) if new else {}
        taken = {t.name for t in self.tracks}
        first_group = sum(len(x.optimizer.param_groups) for x in self.optimizers[: o.index])
        for g, group in enumerate(o.optimizer.param_groups):
            for k, p in enumerate(group["params"]):
                if id(p) in known:
                    continue
                track = self._by_param.get(id(p))
                if track is None:
                    name = names.get(id(p)) or f"opt{o.index}.{g}.{k}"
                    while name in taken:
                        name += "'"
                    taken.add(name)
                    track = _Track(name, p, first_group + g, [o.index])
                    if p.grad is not None:  # found late (see `trace`): it holds a pass
                        track.accumulated = 1
                        track.seen = (id(p.grad), p.grad._version)
                    self.tracks.append(track)
                    self._by_param[id(p)] = track
                else:
                    track.owners.append(o.index)
                o.loop.tracks.append(track)

    def _note_received(self, before: list[GradState]) -> None:
        """The parameters whose `.grad` the backward changed (replaced, or added to in place:
        its version counter moved), in order: None for a gradient into a cleared `.grad`,
        True for one added to a sum."""
        self.received = {}
        for track, was in zip(self.tracks, before, strict=False):
            if grad_received(track.tensor.grad, was):
                fresh = was[0] is None or track.accumulated == 0
                self.received[track.name] = None if fresh else True

    def _name(self, o: _Optimizer) -> str:
        if o.name is None:
            o.name = naming.name_of(o.optimizer)
        return o.label

    # ------------------------------------------------------------------ ops

    def _enter(self) -> bool:
        """Start an op in this thread; False when one is already running in it (the call
        is part of that op: Tensor.backward calls torch.autograd.backward)."""
        if getattr(_local, "depth", 0):
            return False
        if self.stop_requested or (self.max_ops is not None and len(self.events) >= self.max_ops):
            self.stopped = self.stopped or (
                "stopped by the user" if self.stop_requested else f"--max-ops {self.max_ops}"
            )
            raise TraceStopped(self.stopped)
        return True

    def _pause(self, op: str, where: Where, optimizer: str | None) -> None:
        if self.pause is not None:
            self.pause(Pending(len(self.events), op, where, optimizer, self.loss_value))
            if self.stop_requested:
                self.stopped = self.stopped or "stopped by the user"
                raise TraceStopped(self.stopped)

    def _backward(self, tensors: Any, call: Callable[[], Any]) -> Any:
        if not self._enter():
            return call()
        _local.depth = 1
        try:
            return self._backward_op(tensors, call)
        finally:
            _local.depth = 0

    def _backward_op(self, tensors: Any, call: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        where = naming.where()
        loss = _single(tensors)
        new_loss = loss is not None and loss is not self.loss
        if new_loss:
            assert loss is not None
            self._observe_loss(loss)
        if self.detail:  # the panels name every optimizer before its first step
            for o in self.optimizers:
                self._name(o)
        self._pause("backward", where, None)
        self._sync_cleared()
        self.received = {}
        before = [grad_state(t.tensor.grad) for t in self.tracks]
        source = where.short  # the loss's source: the line of its backward
        self._found = self._before_backward(new_loss, source)
        ddp = self._ddp()
        if ddp is not None:
            ddp.arriving()
        recorder = FlowRecorder(self._graph_fns) if loss is self.loss and self._graph_fns else None
        try:
            with recorder or nullcontext():
                result = call()
        except Exception as e:
            self._note_received(before)
            message = str(e).strip()
            error = OpError(type(e).__name__, message, explain(message))
            summary = f"{error.type}: {message.splitlines()[0] if message else ''}"
            self._finish("backward", where, None, start, summary, error, self.optimizers)
            raise
        self._note_received(before)
        if recorder is not None:
            self._record_flow(recorder)
        index = len(self.events)
        if ddp is not None:
            ddp.backward_done(index, where)
            self.attach(ddp.settle([o.label for o in self.optimizers]))
        reached: list[_Optimizer] = []
        for track in self.tracks:
            if track.name not in self.received:
                continue
            if self.received[track.name] is None:
                track.accumulated = 1
                track.used_by = None
                track.candidate = None
                track.sources = {source}
            else:
                track.sources.add(source)
                track.accumulated += 1
                if track.used_by is not None and track.candidate is None:
                    track.candidate = (index, track.accumulated - 1, track.used_by)
            grad = track.tensor.grad
            track.seen = None if grad is None else (id(grad), grad._version)
            for i in track.owners:
                if self.optimizers[i] not in reached:
                    reached.append(self.optimizers[i])
        got = [t for t in self.tracks if t.name in self.received]
        if got and not self.detail:
            summary = f"{len(got)} parameters received a gradient"
        elif got:
            shown = [f"{t.name}.grad = {fmt.brief(t.tensor.grad)}" for t in got[:2]]
            summary = "; ".join(shown) + (f" (+{len(got) - 2} more)" if len(got) > 2 else "")
        else:
            summary = "no optimizer parameter received a gradient"
        self._finish("backward", where, None, start, summary, None, reached)
        return result

    def _observe_loss(self, loss: torch.Tensor) -> None:
        self.loss = loss
        if self.detail:
            self._extract(loss)
        value = None
        if loss.numel() == 1 and not loss.is_complex():
            value = float(loss.detach().item())
            self.loss_history.append(value)
            if self.detail:
                self.loss_name = naming.name_of(loss) or "loss"
                self.loss_series.setdefault(self.loss_name, []).append(value)
        self.loss_value = value
        self.forward_count += 1

    def _extract(self, loss: torch.Tensor) -> None:
        names = {t.name: t.tensor for t in self.tracks}
        try:
            owners = naming.module_owners(
                [t.tensor for t in self.tracks], {id(t.tensor): t.name for t in self.tracks}
            )
            self.graph, self._graph_fns = extract_nodes(loss, names, owners=owners)
            self.graph_error = None
        except Exception as e:  # observing must never break the script
            self.graph, self._graph_fns = None, []
            self.graph_error = self._graph_failed(f"extraction failed: {failure(e)}")

    def _record_flow(self, recorder: FlowRecorder) -> None:
        """The graph with the gradients its backward sent through each node."""
        self._graph_fns = []  # a graph is recorded once: its buffers are freed now
        if self.graph is None:
            return
        try:
            self.graph = with_flow(self.graph, recorder)
        except Exception as e:  # observing must never break the script
            self.graph_error = self._graph_failed(
                f"recording the gradient flow failed: {failure(e)}"
            )

    def _graph_failed(self, what: str) -> str:
        text = f"graph: {what}"
        self._failures.append(text)
        return text

    def _sync_cleared(self) -> None:
        """Notice gradients the script cleared itself (model.zero_grad(), p.grad = None,
        p.grad.zero_()) since the last op: their next backward starts a new sum."""
        for track in self.tracks:
            if track.accumulated == 0:
                continue
            grad = track.tensor.grad
            if grad is None:
                self._clear(track)
            elif track.seen != (id(grad), grad._version):
                track.seen = (id(grad), grad._version)
                try:
                    zero = not bool(grad.any())
                except RuntimeError:
                    zero = False
                if zero:
                    self._clear(track)

    def _clear(self, track: _Track) -> None:
        track.accumulated = 0
        track.used_by = None
        track.candidate = None
        track.sources = set()

    def _step(self, optimizer: torch.optim.Optimizer, call: Callable[[], Any]) -> Any:
        stepping: list[torch.optim.Optimizer] = getattr(_local, "stepping", [])
        if any(x is optimizer for x in stepping) or not self._enter():
            return call()  # a subclass's step calling its parent's: one op
        start = time.perf_counter()
        o = self._register(optimizer)
        where = naming.where()
        self._pause("step", where, self._name(o))
        o.detectors.before(o.loop, "step")
        moving = [t for t in o.loop.tracks if t.tensor.grad is not None]
        copies = None
        if self.detail:
            copies = StepCopies(optimizer, [(t.name, t.tensor) for t in moving])
        ddp = self._ddp()
        digest = None
        if ddp is not None:
            digest = ddp.digest(
                [
                    (t.name, t.tensor.grad)
                    for t in moving
                    if t.tensor.grad is not None and id(t.tensor) in self._ddp_params
                ]
            )
        _local.stepping = [*stepping, optimizer]
        count = len(self.events)
        try:
            result = call()
        except Exception as e:
            message = str(e).strip()
            error = OpError(type(e).__name__, message, explain(message))
            summary = f"{error.type}: {message.splitlines()[0] if message else ''}"
            self._finish("step", where, o, start, summary, error, [o])
            raise
        finally:
            _local.stepping = stepping
        if len(self.events) != count:
            # ops inside the step (LBFGS's closure) had the detectors' attention since
            # its start: the step's own facts are those from here
            o.detectors.before(o.loop, "step")
        self.step_count += 1
        o.loop.step_count += 1
        index = len(self.events)
        if copies is not None:
            self.last_steps[o.label] = copies.finish(o.label, index, where)
        if ddp is not None and digest is not None:
            ddp.stepped(o.index, o.label, index, where, digest)
        self._warn_accumulated([t for t in moving if t.candidate is not None], index, where)
        for track in moving:
            for source in track.sources:
                self._owners.setdefault(source, set()).add(o.index)
            track.used_by = index
            grad = track.tensor.grad
            track.seen = None if grad is None else (id(grad), grad._version)
        if moving and not self.detail:
            summary = f"{len(moving)} parameters moved"
        elif moving:
            parts = [f"{t.name} → {fmt.brief(t.tensor)}" for t in moving[:2]]
            more = f" (+{len(moving) - 2} more)" if len(moving) > 2 else ""
            summary = "; ".join(parts) + more
        else:
            summary = "no parameter has a gradient: nothing moved"
        self._finish("step", where, o, start, summary, None, [o])
        return result

    def _zero_grad(self, optimizer: torch.optim.Optimizer, call: Callable[[], Any]) -> Any:
        if not self._enter():
            return call()
        _local.depth = 1
        try:
            start = time.perf_counter()
            o = self._register(optimizer)
            where = naming.where()
            self._pause("zero_grad", where, self._name(o))
            o.detectors.before(o.loop, "zero_grad")
            result = call()
            for track in o.loop.tracks:
                self._clear(track)
                grad = track.tensor.grad
                track.seen = None if grad is None else (id(grad), grad._version)
            none = all(t.tensor.grad is None for t in o.loop.tracks)
            summary = "grads cleared (set to None)" if none else "grads set to zero"
            self._finish("zero_grad", where, o, start, summary, None, [o])
            return result
        finally:
            _local.depth = 0

    # ------------------------------------------------------------------ recording

    def _before_backward(self, new_loss: bool, source: str) -> list[Finding]:
        """Before the backward runs: every optimizer's detectors see the new loss (its
        forward) and the coming backward, so that they compare the state before with the
        state after. The loss is one of `source`'s (the backward's line): its series is
        judged by the optimizers whose steps use that source's gradients."""
        found: list[Finding] = []
        owners = self._owners.get(source)
        for o in self.optimizers:
            if new_loss:
                o.loop.loss, o.loop.loss_value = self.loss, self.loss_value
                o.loop.loss_source = source
                o.loop.judges_loss = owners is None or o.index in owners
                if self.loss_value is not None:
                    o.loop.loss_history.append(self.loss_value)
                o.detectors.before(o.loop, "forward")
                found += o.detectors.after(o.loop, "forward", None, [])
            o.detectors.before(o.loop, "backward")
        return found

    def _finish(
        self,
        op: str,
        where: Where,
        opt: _Optimizer | None,
        start: float,
        summary: str,
        error: OpError | None,
        loops: Sequence[_Optimizer],
    ) -> None:
        """Run the detectors of the optimizers the op concerns, then log the event."""
        found: list[Finding] = []
        if op == "backward":
            found, self._found = self._found, []
        for o in loops:
            found += o.detectors.after(o.loop, op, error, [])
        failures, self._failures = self._failures, []
        for o in self.optimizers:  # a backward's forward ran every optimizer's detectors
            failures += o.detectors.take_errors()
        event = Event(
            index=len(self.events),
            op=op,
            summary=summary,
            loss=self.loss_value,
            warnings=tuple(dict.fromkeys(found)),
            error=error,
            seconds=time.perf_counter() - start,
            observer_errors=tuple(dict.fromkeys(failures)),
        )
        self.events.append(event)
        traced = TracedOp(event, where, opt.label if opt is not None else None)
        if self.records:
            traced.record = self._record(event, traced)
        self.ops.append(traced)
        self._open.append(traced)
        if self.on_op is not None:
            self.on_op(traced)
        self._flush()

    def _record(self, event: Event, traced: TracedOp) -> dict[str, Any]:
        grads = {}
        params = {}
        for t in self.tracks:
            params[t.name] = _json(view(t.tensor))
            grads[t.name] = _json(view(t.tensor.grad))
        record: dict[str, Any] = {
            "index": event.index,
            "op": event.op,
            "loss": self.loss_value,
            "params": params,
            "grads": grads,
            "warnings": [],
            "error": event.error.to_json() if event.error is not None else None,
            "where": traced.where.short,
            "function": traced.where.function,
            "optimizer": traced.optimizer,
        }
        if event.observer_errors:
            record["observer_errors"] = list(event.observer_errors)
        if self.rank is not None:
            record["rank"] = self.rank
        return record

    def _warn_accumulated(self, tracks: list[_Track], step_index: int, step_where: Where) -> None:
        """One `grad-accumulated` on each backward that added to a used gradient, naming
        every parameter it did that to."""
        by_backward: dict[int, list[_Track]] = {}
        for track in tracks:
            assert track.candidate is not None
            by_backward.setdefault(track.candidate[0], []).append(track)
        for backward, group in by_backward.items():
            first = group[0]
            assert first.candidate is not None
            _, passes, used_at = first.candidate
            for track in group:
                track.candidate = None
            traced = self.ops[backward]
            names = ", ".join(t.name for t in group[:_LISTED])
            if len(group) > _LISTED:
                names += f" (+{len(group) - _LISTED} more)"
            held = "was" if len(group) == 1 else "were"
            finding = Finding(
                "grad-accumulated",
                f"{fmt.plural(len(group), 'gradient')} ({names}) {held} the sum of "
                f"{first.accumulated} backward passes when the step at op {step_index} "
                f"({step_where.short}) used {'it' if len(group) == 1 else 'them'}: the backward "
                f"at op {backward} ({traced.where.short}) added to what the step at op "
                f"{used_at} had already used ({_passes(passes)}), with no zero_grad in between. "
                "PyTorch adds new gradients to .grad: call "
                "optimizer.zero_grad() once per iteration, before backward.",
                param=first.name,
            )
            self.attach([(backward, finding)])

    def attach(self, found: list[tuple[int, Finding]]) -> None:
        """Add warnings found later to the ops they belong to (not silenced ones)."""
        for index, finding in found:
            if finding.code in self.thresholds.silence:
                continue
            traced = self.ops[index]
            traced.event = replace(traced.event, warnings=(*traced.event.warnings, finding))
            self.events[index] = traced.event

    def _ddp(self) -> DdpCheck | None:
        """The DDP comparison, once the script initialised a process group of several ranks."""
        if self.ddp is None and self.rank is not None:
            if not self._ddp_params and not self._ddp_scanned:
                self._ddp_scanned = True  # modules wrapped before the tracer was installed
                self._ddp_params = ddp_params()
            if self._ddp_params:
                self.ddp = DdpCheck.current(self.thresholds.ddp_grad_rtol)
        return self.ddp

    def _waiting(self) -> set[int]:
        """Ops whose warnings may still grow."""
        waiting = {t.candidate[0] for t in self.tracks if t.candidate is not None}
        if self.ddp is not None:
            waiting |= self.ddp.waiting()
        return waiting

    def settled(self) -> int:
        """Ops before this index have all their warnings (later ones may still get one)."""
        return min(self._waiting(), default=len(self.events))

    def _flush(self) -> None:
        waiting = self._waiting()
        while self._open and self._open[0].event.index not in waiting:
            traced = self._open.popleft()
            if self.on_final is not None:
                self.on_final(traced)

    # ------------------------------------------------------------------ results

    def snapshot(self, title: str, next_op: str = "") -> Snapshot:
        """A detached copy of the loop state now, as the panels show it."""
        groups = self.param_groups
        deltas = self._last_updates()
        return Snapshot(
            scenario=title,
            title=title,
            op_count=len(self.events),
            step_count=self.step_count,
            iteration=self.forward_count,
            epoch=0,
            batch=0,
            batches_per_epoch=None,
            has_data=False,
            loss=self.loss_value,
            loss_history=tuple(self.loss_history),
            loss_steps=tuple(range(len(self.loss_history))),
            next_op=next_op,
            optimizer=", ".join(
                f"{o.label}: {type(o.optimizer).__name__}" for o in self.optimizers
            ),
            groups=tuple({k: plain(v) for k, v in g.items() if k != "params"} for g in groups),
            params=tuple(self._param_snapshot(t, deltas) for t in self.tracks),
            has_graph=self.graph is not None,
        )

    def _param_snapshot(self, track: _Track, deltas: dict[str, TensorView]) -> ParamSnapshot:
        p = track.tensor
        value = view(p)
        assert value is not None
        state = self.optimizers[track.owners[0]].optimizer.state.get(p, {})
        return ParamSnapshot(
            name=track.name,
            group=track.group,
            value=value,
            grad=view(p.grad),
            accumulated=track.accumulated if p.grad is not None else 0,
            last_update=deltas.get(track.name),
            state={k: plain(v) for k, v in state.items()},
            requires_grad=p.requires_grad,
        )

    def _last_updates(self) -> dict[str, TensorView]:
        """Each parameter's change at the latest step that moved it (the detail mode keeps
        each optimizer's latest step; headless, there is none)."""
        latest: dict[str, tuple[int, TensorView]] = {}
        for info in self.last_steps.values():
            for u in info.updates:
                if u.name not in latest or latest[u.name][0] < info.index:
                    latest[u.name] = (info.index, u.delta)
        return {name: delta for name, (_, delta) in latest.items()}

    def warned(self) -> bool:
        return any(e.warnings for e in self.events)

    def summary_line(self, script: str) -> str:
        """The one-line summary of `--quiet`."""
        codes = sorted({w.code for e in self.events for w in e.warnings})
        errors = sum(1 for e in self.events if e.error)
        return (
            f"{script}: {fmt.plural(len(self.events), 'op')} "
            f"({fmt.plural(self.forward_count, 'loss', 'losses')}, "
            f"{fmt.plural(self.step_count, 'step')}, "
            f"{fmt.plural(len(self.optimizers), 'optimizer')}), final loss "
            f"{fmt.num(self.loss_value)}, errors {errors}, warnings: "
            f"{', '.join(codes) if codes else 'none'}"
        )

    def records_so_far(self) -> Iterator[dict[str, Any]]:
        for traced in self.ops:
            record = traced.final_record()
            if record is not None:
                yield record


class _Global:
    tracer: Tracer | None = None


def _stepped_classes() -> list[type]:
    """The optimizer classes that have instances already: PyTorch marks the step of each
    class it made an instance of (wrapped in its step hooks) as `hooked`."""
    found: list[type] = []
    todo: list[type] = [torch.optim.Optimizer]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if getattr(cls.__dict__.get("step"), "hooked", False):
            found.append(cls)
    return found


def _passes(n: int) -> str:
    return "one backward pass" if n == 1 else f"the sum of {n} passes"


def _single(tensors: Any) -> torch.Tensor | None:
    if isinstance(tensors, torch.Tensor):
        return tensors
    if isinstance(tensors, list | tuple) and len(tensors) == 1:
        first = tensors[0]
        return first if isinstance(first, torch.Tensor) else None
    return None


def _json(v: TensorView | None) -> Any:
    return None if v is None else v.to_json()


def env_rank() -> int | None:
    """This process's rank under torchrun (RANK with WORLD_SIZE), else None."""
    rank, world = os.environ.get("RANK"), os.environ.get("WORLD_SIZE")
    if rank is None or world is None:
        return None
    try:
        return int(rank)
    except ValueError:
        return None
