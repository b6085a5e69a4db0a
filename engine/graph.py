"""Extract the autograd graph of a loss into plain data (nodes, edges, labels, values).

Extraction is separate from drawing: the TUI's graph panel and the DOT/PNG/SVG export
(`engine.export`) both render the `Graph` returned here. Everything in a `Graph` is a
detached copy (`TensorView`s, strings, numbers): it never holds live tensors.

Three moments feed a Graph:

- **Forward** (`ForwardCapture`, used by the Session when `capture_graph` is on): while the
  scenario's forward runs, a `TorchFunctionMode` notes the output tensor of every torch call
  (the forward value, "data", of the node it created) and global module hooks note which
  named module (`model.0`, `loss_fn`, ...) was running. Nothing is changed: each call runs
  exactly as it would without the mode.
- **Extraction** (`extract`): an iterative walk of `grad_fn.next_functions` from the loss,
  reading each node's saved tensors (`_saved_*`) while they still exist (backward frees
  them; a graph extracted after backward marks them `freed`).
- **Backward** (`FlowRecorder`): autograd Node hooks (`register_prehook` / `register_hook`)
  copy the gradient arriving at each node and the gradients it sends to its inputs, in the
  order autograd runs the nodes; `with_flow` turns that into `Graph.flow` (per node: "grad"
  next to the node's "data", as in micrograd) and `Graph.steps` (the backward in slow
  motion). The hooks return None, so the gradients are untouched, and they are removed
  after the pass.
"""

from __future__ import annotations

import gc
import re
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from .snapshot import SMALL, Summary, TensorView, plain, summary_stats, view

_BACKWARD_SUFFIX = re.compile(r"Backward\d*$")

FREED = "freed by backward"
MODIFIED = "modified in place since the forward"


@dataclass(frozen=True)
class Saved:
    """Something a node saved for its backward: a tensor (as a TensorView) or a plain value.

    `freed` is set when the value can no longer be read (`note` says why: backward freed it,
    or it was modified in place). `source` names the scenario tensor it is, or is a view of
    (e.g. "x", "model.0.weight (view)").
    """

    name: str
    value: Any = None
    freed: bool = False
    tensor: bool = True
    source: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Node:
    id: str
    name: str
    """grad_fn class name, e.g. MulBackward0, AccumulateGrad."""
    label: str
    """Friendly label: mul, pow, addmm; the parameter name for a leaf."""
    param: str | None = None
    """For leaves: the scenario name of the tensor (None for an unnamed leaf)."""
    value: TensorView | None = None
    """The node's data: for leaves the tensor's value when extracted; for op nodes the
    forward output when it was captured at forward time (or saved as `result`)."""
    saved: tuple[Saved, ...] = field(default_factory=tuple)
    """Saved tensors (`tensor=True`) and saved attributes such as dims and sizes."""
    module: str | None = None
    """The innermost named module whose forward created this node (`model.0`, `loss_fn`);
    for a parameter's leaf, the module owning the parameter."""
    inputs: tuple[str | None, ...] = field(default_factory=tuple)
    """One entry per `next_functions` slot: the input node's id, None where nothing flows."""

    @property
    def is_leaf(self) -> bool:
        return self.name == "AccumulateGrad"

    @property
    def derivative(self) -> str:
        """The local derivative rule of this op, in words (empty when not known)."""
        return derivative(self.label if not self.is_leaf else "accumulategrad")

    @property
    def saved_tensors(self) -> tuple[Saved, ...]:
        return tuple(s for s in self.saved if s.tensor)


@dataclass(frozen=True)
class Flow:
    """The gradients through one node during the last recorded backward."""

    order: int
    """Position of this node in autograd's execution order (0 is the loss's node)."""
    grad_in: tuple[TensorView | None, ...]
    """Gradient of the loss w.r.t. each output of the node (what arrives from its consumers,
    already summed); for a leaf, the gradient it deposited into `.grad` in this pass."""
    grad_out: tuple[TensorView | None, ...] = ()
    """What the node sends to each input, per `next_functions` slot (empty for leaves)."""
    grad_before: TensorView | None = None
    """Leaves: `.grad` before this pass (None when it was None)."""
    grad_after: TensorView | None = None
    """Leaves: `.grad` after this pass (grad_before + deposited)."""

    @property
    def grad(self) -> TensorView | None:
        """The "grad" shown next to the node's "data": d loss / d (node output)."""
        return self.grad_in[0] if self.grad_in else None


@dataclass(frozen=True)
class BackwardStep:
    """One node of the backward in slow motion: the chain rule at that node, with numbers."""

    index: int
    node: str
    name: str
    label: str
    grad_in: TensorView | None
    """The gradient arriving at the node (sum over its consumers)."""
    derivative: str
    """The local derivative rule, in words."""
    local: tuple[TensorView | None, ...]
    """Per input slot, the local derivative as numbers (grad_out / grad_in) where the op is
    elementwise and the tensors small; None elsewhere."""
    outputs: tuple[tuple[str | None, TensorView | None], ...]
    """Per input slot: (input node id, gradient sent to it)."""
    param: str | None = None
    grad_before: TensorView | None = None
    grad_after: TensorView | None = None
    """For leaves: `.grad` before and after the deposit of this step."""

    @property
    def is_leaf(self) -> bool:
        return self.name == "AccumulateGrad"


@dataclass(frozen=True)
class Graph:
    root: str | None
    nodes: dict[str, Node]
    """By id, in walk order from the root (ids n0, n1, ... in that order)."""
    edges: tuple[tuple[str, str], ...]
    """(consumer, input): the gradient flows from the first to the second."""
    loss: TensorView | None = None
    flow: Mapping[str, Flow] = field(default_factory=dict)
    """Per node id, the gradients of the last recorded backward (empty before one)."""
    steps: tuple[BackwardStep, ...] = ()
    """The last recorded backward, node by node in execution order."""
    captured: bool = False
    """True when extracted at forward time: node data, modules and saved tensors complete."""
    seconds: float = 0.0
    """Time the extraction took."""

    def inputs(self, node_id: str) -> list[str]:
        return [i for i in self.nodes[node_id].inputs if i is not None]

    def consumers(self, node_id: str) -> list[str]:
        return [a for a, b in self.edges if b == node_id]

    def __len__(self) -> int:
        return len(self.nodes)

    def modules(self) -> list[str]:
        """Names of the modules that produced nodes, in first-seen order."""
        seen: dict[str, None] = {}
        for node in self.nodes.values():
            if node.module is not None:
                seen.setdefault(node.module, None)
        return list(seen)

    def by_module(self) -> dict[str | None, list[str]]:
        """Node ids grouped by module (None: created outside any named module)."""
        groups: dict[str | None, list[str]] = {}
        for nid, node in self.nodes.items():
            groups.setdefault(node.module, []).append(nid)
        return groups

    def leaf(self, param: str) -> str | None:
        """The id of the AccumulateGrad leaf of a named parameter, if it is in the graph."""
        return next((n.id for n in self.nodes.values() if n.param == param), None)

    @property
    def has_flow(self) -> bool:
        return bool(self.flow)

    def at_step(self, index: int) -> Graph:
        """The graph as its recorded backward had left it after step `index` (0-based): the
        flow of the nodes it had reached by then only (what the slow motion shows there)."""
        return replace(self, flow={n: f for n, f in self.flow.items() if f.order <= index})


def friendly(name: str) -> str:
    return _BACKWARD_SUFFIX.sub("", name).lower() or name


# ------------------------------------------------------------------ forward capture


def module_names(namespace: Mapping[str, Any]) -> tuple[dict[int, str], dict[int, str]]:
    """(id(module) -> name, id(parameter) -> owning module name) for the scenario's globals.

    Names follow the parameter names: `model`, `model.0`, `loss_fn`. The first global that
    reaches a module names it.
    """
    modules: dict[int, str] = {}
    owners: dict[int, str] = {}
    for key, value in namespace.items():
        if key.startswith("__") or not isinstance(value, torch.nn.Module):
            continue
        for name, module in value.named_modules(prefix=key):
            if id(module) in modules:
                continue
            modules[id(module)] = name
            for p in module.parameters(recurse=False):
                owners.setdefault(id(p), name)
    return modules, owners


class _OutputMode(TorchFunctionMode):
    def __init__(self, capture: ForwardCapture) -> None:
        super().__init__()
        self.capture = capture

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Iterable[type],
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        self.capture.record(out)
        return out


class ForwardCapture:
    """Active around one forward: each op's output tensor and the module it ran in.

    Holds references to the outputs (with their version counters) until `extract` has
    copied them out; the Session drops it right after.
    """

    def __init__(self, modules: Mapping[int, str] | None = None) -> None:
        self.modules = dict(modules or {})
        self.outputs: dict[Any, tuple[torch.Tensor, int, str | None]] = {}
        self._stack: list[str] = []
        self._mode: _OutputMode | None = None
        self._handles: list[Any] = []

    def record(self, out: Any) -> None:
        if isinstance(out, torch.Tensor):
            fn = out.grad_fn
            if fn is not None and fn not in self.outputs:
                self.outputs[fn] = (out, out._version, self._stack[-1] if self._stack else None)
        elif isinstance(out, tuple | list):
            for item in out:
                if isinstance(item, torch.Tensor):
                    self.record(item)

    def _pre(self, module: torch.nn.Module, _args: Any) -> None:
        name = self.modules.get(id(module))
        if name is not None:
            self._stack.append(name)

    def _post(self, module: torch.nn.Module, _args: Any, _out: Any) -> None:
        name = self.modules.get(id(module))
        if name is not None and self._stack and self._stack[-1] == name:
            self._stack.pop()

    def __enter__(self) -> ForwardCapture:
        from torch.nn.modules import module as nn_module

        if self.modules:
            self._handles = [
                nn_module.register_module_forward_pre_hook(self._pre),
                nn_module.register_module_forward_hook(self._post),
            ]
        self._mode = _OutputMode(self)
        self._mode.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._mode is not None:
            self._mode.__exit__(exc_type, exc, tb)
            self._mode = None
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._stack = []


# ------------------------------------------------------------------ extraction


def walk(root: Any) -> tuple[list[Any], list[tuple[int | None, ...]]]:
    """Iterative depth-first walk from `root`: the grad_fn objects (index = node number) and,
    per node, the index of the node in each `next_functions` slot (None for an empty slot).
    Holding the objects keeps their identities stable for the walk and for hooks."""
    fns = [root]
    index: dict[Any, int] = {root: 0}
    slots: list[tuple[int | None, ...]] = [()]
    stack = [0]
    while stack:
        i = stack.pop()
        row: list[int | None] = []
        for child, _ in fns[i].next_functions:
            if child is None:
                row.append(None)
                continue
            j = index.get(child)
            if j is None:
                j = len(fns)
                index[child] = j
                fns.append(child)
                slots.append(())
                stack.append(j)
            row.append(j)
        slots[i] = tuple(row)
    return fns, slots


_GRAIN = 32768
"""Elements per stacked reduction: torch's grain size, below which a reduction runs on one
thread. Many small reductions gain nothing from threads, and on a busy machine waiting for
them costs milliseconds each."""


class _Views:
    """TensorViews for many tensors at once: `add` returns a slot, `resolve` fills them.

    Small tensors are copied at once (exact values); the summaries of big floating-point
    ones are computed together, one stacked reduction per (size, dtype, device), which is
    an order of magnitude faster than one `summarize` per tensor and gives the same
    numbers. The same tensor data (storage, layout, version) gets one slot: saved tensors
    are often another node's output or a parameter.
    """

    def __init__(self, known: Callable[[torch.Tensor], TensorView | None] | None = None) -> None:
        self.results: list[TensorView | None] = []
        self._known = known
        """A caller's views of tensors as they are now (`ViewMemo.checked`), taken first."""
        self._pending: dict[tuple[Any, ...], list[tuple[int, torch.Tensor]]] = {}
        self._seen: dict[tuple[Any, ...], int] = {}
        self._deferred: list[tuple[int, Deferred]] = []

    def add(self, t: torch.Tensor | Deferred | None) -> int:
        slot = len(self.results)
        if isinstance(t, Deferred):
            self.results.append(None)
            self._deferred.append((slot, t))
            return slot
        if t is None or t.numel() <= SMALL or t.layout != torch.strided:
            self.results.append(view(t))
            return slot
        known = self._known(t) if self._known is not None else None
        t = t.detach()
        key = _storage_key(t)
        seen = self._seen.get(key)
        if seen is not None:
            return seen
        self._seen[key] = slot
        self.results.append(known)
        if known is not None:
            return slot
        if t.is_floating_point() and t.numel() > _GRAIN:  # its own: `snapshot.view`'s numbers
            self._deferred.append((slot, Deferred(t)))
        elif t.is_floating_point():
            self._pending.setdefault((t.numel(), t.dtype, t.device), []).append((slot, t))
        else:
            self.results[slot] = view(t)
        return slot

    def resolve(self) -> list[TensorView | None]:
        chunks = [
            group[k : k + max(1, _GRAIN // numel)]
            for (numel, _, _), group in self._pending.items()
            for k in range(0, len(group), max(1, _GRAIN // numel))
        ]
        for group in chunks:
            # one big tensor is its own row (a view: stacking it would copy it)
            x = (
                group[0][1].reshape(1, -1)
                if len(group) == 1
                else torch.stack([t.reshape(-1) for _, t in group])
            )
            lo, hi = torch.aminmax(x, dim=1)
            stats = torch.stack(
                [
                    x.mean(1),
                    x.std(1) if x.shape[1] > 1 else x.new_zeros(len(group)),
                    lo,
                    hi,
                    torch.linalg.vector_norm(x, dim=1),
                ],
                dim=1,
            ).tolist()
            for (slot, t), (mean, std, lo, hi, norm) in zip(group, stats, strict=True):
                self.results[slot] = TensorView(
                    tuple(t.shape),
                    str(t.dtype).removeprefix("torch."),
                    str(t.device),
                    summary=Summary(mean, std, lo, hi, norm),
                )
        self._pending = {}
        if self._deferred:  # one transfer for all of them
            rows = torch.stack([d.stats.to("cpu", torch.float64) for _, d in self._deferred])
            for (slot, d), (mean, std, lo, hi, norm) in zip(
                self._deferred, rows.tolist(), strict=True
            ):
                self.results[slot] = TensorView(
                    d.shape, d.dtype, d.device, summary=Summary(mean, std, lo, hi, norm)
                )
            self._deferred = []
        return self.results


_SAVED_ATTRS: dict[type, tuple[tuple[str, str], ...]] = {}


def _saved_attrs(fn: Any) -> tuple[tuple[str, str], ...]:
    kind = type(fn)
    attrs = _SAVED_ATTRS.get(kind)
    if attrs is None:
        attrs = tuple(
            (attr, attr.removeprefix("_saved_")) for attr in dir(kind) if attr.startswith("_saved_")
        )
        _SAVED_ATTRS[kind] = attrs
    return attrs


def extract(
    loss: torch.Tensor,
    names: Mapping[str, torch.Tensor] | None = None,
    *,
    capture: ForwardCapture | None = None,
    owners: Mapping[int, str] | None = None,
) -> Graph:
    """Walk loss.grad_fn / next_functions into a Graph. `names` maps names to leaf tensors;
    `capture` (a finished ForwardCapture) adds node data and modules; `owners` maps
    id(parameter) to the module owning it."""
    return extract_nodes(loss, names, capture=capture, owners=owners)[0]


@contextmanager
def _paused_gc() -> Iterator[None]:
    """Extraction creates tens of thousands of small acyclic objects (views, nodes, tuples);
    letting them trigger the cyclic garbage collector mid-way costs a full collection of
    everything the process holds (hundreds of ms in a big app) and frees nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def extract_nodes(
    loss: torch.Tensor,
    names: Mapping[str, torch.Tensor] | None = None,
    *,
    capture: ForwardCapture | None = None,
    owners: Mapping[int, str] | None = None,
    leaf_views: list[tuple[torch.Tensor, TensorView]] | None = None,
    known: Callable[[torch.Tensor], TensorView | None] | None = None,
) -> tuple[Graph, list[Any]]:
    """`extract`, also returning the grad_fn objects in node-id order (for FlowRecorder).
    `leaf_views` receives each big leaf tensor with its view (exactly `snapshot.view`'s);
    `known` gives the views a caller already holds of tensors as they are now (the node
    data takes them instead of summarizing the tensors again)."""
    with _paused_gc():
        graph, fns = _extract_nodes(loss, names, capture, owners, known)
    if leaf_views is not None:
        for i, fn in enumerate(fns):
            variable = getattr(fn, "variable", None)
            if not isinstance(variable, torch.Tensor) or not _is_big(variable):
                continue
            node = graph.nodes.get(f"n{i}")
            if node is not None and node.value is not None:
                leaf_views.append((variable, node.value))
    return graph, fns


def _extract_nodes(
    loss: torch.Tensor,
    names: Mapping[str, torch.Tensor] | None,
    capture: ForwardCapture | None,
    owners: Mapping[int, str] | None,
    known: Callable[[torch.Tensor], TensorView | None] | None = None,
) -> tuple[Graph, list[Any]]:
    start = time.perf_counter()
    root = loss.grad_fn
    if root is None:
        return Graph(None, {}, (), view(loss), captured=capture is not None), []
    by_id = {id(t): n for n, t in (names or {}).items()}
    owners = owners or {}
    outputs = capture.outputs if capture is not None else {}
    views = _Views(known)
    fns, slots = walk(root)
    ids = [f"n{i}" for i in range(len(fns))]
    modules: list[str | None] = [None] * len(fns)
    values: list[int | None] = [None] * len(fns)
    params: list[str | None] = [None] * len(fns)
    saved: list[list[_RawSaved]] = [[] for _ in fns]
    for i, fn in enumerate(fns):
        variable = getattr(fn, "variable", None)
        if isinstance(variable, torch.Tensor):
            params[i] = by_id.get(id(variable))
            modules[i] = owners.get(id(variable))
            values[i] = views.add(variable)
            continue
        saved[i] = _saved(fn, by_id, views)
        record = outputs.get(fn)
        if record is not None:
            tensor, version, modules[i] = record
            if tensor._version == version:
                values[i] = views.add(tensor)
        if values[i] is None:
            values[i] = next((r.slot for r in saved[i] if r.name == "result"), None)
    if capture is not None:
        _propagate_modules(fns, slots, modules, outputs)
    results = views.resolve()
    nodes: dict[str, Node] = {}
    edges: list[tuple[str, str]] = []
    for i, fn in enumerate(fns):
        nid = ids[i]
        inputs = tuple(None if j is None else ids[j] for j in slots[i])
        edges.extend((nid, j) for j in inputs if j is not None)
        name = type(fn).__name__
        slot = values[i]
        value = None if slot is None else results[slot]
        if name == "AccumulateGrad" or params[i] is not None:
            variable = fn.variable
            label = params[i] or f"leaf {tuple(variable.shape)}"
            nodes[nid] = Node(
                nid, name, label, param=params[i], value=value, module=modules[i], inputs=inputs
            )
            continue
        nodes[nid] = Node(
            nid,
            name,
            friendly(name),
            value=value,
            saved=tuple(r.build(results) for r in saved[i]),
            module=modules[i],
            inputs=inputs,
        )
    graph = Graph(
        ids[0],
        nodes,
        tuple(edges),
        view(loss),
        captured=capture is not None,
        seconds=time.perf_counter() - start,
    )
    return graph, fns


def _propagate_modules(
    fns: list[Any],
    slots: list[tuple[int | None, ...]],
    modules: list[str | None],
    outputs: Mapping[Any, Any],
) -> None:
    """Op nodes the forward capture did not see as a call's output (created inside another
    op, like the TBackward0 of a Linear's weight) belong to the module of their consumers,
    when all of them agree."""
    consumers: list[set[str | None]] = [set() for _ in fns]
    # a topological order (Kahn), consumers before inputs, so that every consumer's
    # module is settled before its inputs look at it
    pending = [0] * len(fns)
    for row in slots:
        for j in row:
            if j is not None:
                pending[j] += 1
    ready = [i for i in range(len(fns)) if pending[i] == 0]
    while ready:
        i = ready.pop()
        fn = fns[i]
        if modules[i] is None and fn not in outputs and not hasattr(fn, "variable"):
            found = consumers[i]
            if len(found) == 1:
                modules[i] = next(iter(found))
        for j in slots[i]:
            if j is None:
                continue
            consumers[j].add(modules[i])
            pending[j] -= 1
            if pending[j] == 0:
                ready.append(j)


@dataclass
class _RawSaved:
    name: str
    slot: int | None = None
    value: Any = None
    tensor: bool = True
    source: str | None = None
    note: str = ""

    def build(self, results: list[TensorView | None]) -> Saved:
        if self.note:
            return Saved(self.name, freed=True, note=self.note)
        if not self.tensor:
            return Saved(self.name, self.value, tensor=False)
        value = results[self.slot] if self.slot is not None else None
        return Saved(self.name, value, source=self.source)


def _saved(fn: Any, by_id: Mapping[int, str], views: _Views) -> list[_RawSaved]:
    found = []
    for attr, key in _saved_attrs(fn):
        try:
            value = getattr(fn, attr)
        except RuntimeError as e:
            note = MODIFIED if "modified by an inplace" in str(e) else FREED
            found.append(_RawSaved(key, note=note))
            continue
        if isinstance(value, torch.Tensor):
            found.append(_RawSaved(key, views.add(value), source=_source(value, by_id)))
        elif isinstance(value, tuple | list) and any(isinstance(v, torch.Tensor) for v in value):
            for k, v in enumerate(value):
                if isinstance(v, torch.Tensor):
                    found.append(_RawSaved(f"{key}[{k}]", views.add(v), source=_source(v, by_id)))
        else:
            found.append(_RawSaved(key, value=plain(value), tensor=False))
    return found


def _source(t: torch.Tensor, by_id: Mapping[int, str]) -> str | None:
    name = by_id.get(id(t))
    if name is not None:
        return name
    base = t._base
    if base is not None and id(base) in by_id:
        return f"{by_id[id(base)]} (view)"
    return None


# ------------------------------------------------------------------ gradient flow


class Deferred:
    """A big gradient seen by a flow hook, kept as its summary statistics (computed at once,
    on its device) instead of a copy: no gradient outlives the backward, and all the
    summaries come over in one transfer at the end."""

    __slots__ = ("device", "dtype", "shape", "stats")

    def __init__(self, t: torch.Tensor) -> None:
        self.shape = tuple(t.shape)
        self.dtype = str(t.dtype).removeprefix("torch.")
        self.device = str(t.device)
        self.stats = summary_stats(t)


def _storage_key(t: torch.Tensor) -> tuple[Any, ...]:
    return (
        t.untyped_storage().data_ptr(),
        t.storage_offset(),
        tuple(t.shape),
        t.stride(),
        t.dtype,
        t.device,
        t._version,
    )


def _is_big(t: torch.Tensor) -> bool:
    return t.numel() > _GRAIN and t.layout == torch.strided and t.is_floating_point()


class FlowRecorder:
    """Node hooks on every grad_fn of a graph, active for one backward pass.

    Each hook copies what it sees (`detach().clone()`; a big gradient's summary instead,
    see `Deferred`) and returns None, so autograd uses the gradients it computed, unchanged.
    Use as a context manager: the hooks are removed on exit, whether backward succeeded or
    raised.
    """

    def __init__(self, fns: Sequence[Any]) -> None:
        self.fns = fns
        self.order: list[int] = []
        self.grad_in: dict[int, tuple[torch.Tensor | Deferred | None, ...]] = {}
        self.grad_out: dict[int, tuple[torch.Tensor | Deferred | None, ...]] = {}
        self.before: dict[int, torch.Tensor | Deferred | None] = {}
        self._handles: list[Any] = []
        self._gc_was_enabled = False
        self._summaries: dict[int, tuple[weakref.ref[torch.Tensor], int, Deferred]] = {}
        """Big gradients summarized so far, by tensor (a gradient passed on from one node
        to the next is summarized once)."""
        self._incoming: dict[int, tuple[tuple[Any, ...], Deferred]] = {}
        """Per leaf node, the big gradient it received (its storage, layout and version)
        and its summary: AccumulateGrad steals it into `.grad` when nothing else holds it
        (then `.grad` has that storage, unchanged, and the same summary)."""
        self.grad_views: list[tuple[torch.Tensor, TensorView]] = []
        """After `with_flow`: the `.grad` tensors whose view it took from the hooks'
        summaries (exactly `snapshot.view`'s numbers), for a caller's memo."""

    def _copy(self, t: Any) -> torch.Tensor | Deferred | None:
        """What a flow hook keeps of a gradient: a copy, or the summary of a big one."""
        if not isinstance(t, torch.Tensor):
            return None
        if not _is_big(t):
            return t.detach().clone()
        known = self.summary_of(t)
        if known is None:
            known = Deferred(t)
            self._summaries[id(t)] = (weakref.ref(t), t._version, known)
        return known

    def stolen(self, i: int, grad: Any) -> Deferred | None:
        """The summary of leaf node `i`'s incoming gradient if `grad` (its `.grad` after
        the backward) is that very storage, unchanged."""
        hit = self._incoming.get(i)
        if hit is None or not isinstance(grad, torch.Tensor):
            return None
        return hit[1] if _storage_key(grad) == hit[0] else None

    def summary_of(self, t: torch.Tensor) -> Deferred | None:
        """The summary taken of `t` by a hook, if it has not changed since."""
        hit = self._summaries.get(id(t))
        if hit is not None and hit[0]() is t and hit[1] == t._version:
            return hit[2]
        return None

    def _pre(self, i: int, leaf: bool) -> Callable[[Any], None]:
        def hook(grad_outputs: Any) -> None:
            self.order.append(i)
            self.grad_in[i] = tuple(self._copy(g) for g in grad_outputs)
            if leaf:
                self.before[i] = self._copy(self.fns[i].variable.grad)
                first = self.grad_in[i][0] if len(self.grad_in[i]) == 1 else None
                if isinstance(first, Deferred):
                    self._incoming[i] = (_storage_key(grad_outputs[0]), first)

        return hook

    def _post(self, i: int) -> Callable[[Any, Any], None]:
        def hook(grad_inputs: Any, _grad_outputs: Any) -> None:
            self.grad_out[i] = tuple(self._copy(g) for g in grad_inputs)

        return hook

    def __enter__(self) -> FlowRecorder:
        self._gc_was_enabled = gc.isenabled()
        gc.disable()  # see _paused_gc: the hooks allocate thousands of small objects
        try:
            for i, fn in enumerate(self.fns):
                leaf = isinstance(getattr(fn, "variable", None), torch.Tensor)
                self._handles.append(fn.register_prehook(self._pre(i, leaf)))
                if not leaf:
                    self._handles.append(fn.register_hook(self._post(i)))
        except BaseException:
            self._remove()
            raise
        return self

    def _remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if self._gc_was_enabled:
            gc.enable()
            self._gc_was_enabled = False

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._remove()


_FlowRow = tuple[Node, list[int], list[int], tuple[TensorView | None, ...], int | None, int | None]


def with_flow(graph: Graph, recorder: FlowRecorder) -> Graph:
    """The graph with the flow and steps of the backward `recorder` observed."""
    with _paused_gc():
        return _with_flow(graph, recorder)


def _with_flow(graph: Graph, recorder: FlowRecorder) -> Graph:
    ids = list(graph.nodes)
    views = _Views()
    rows: list[_FlowRow] = []
    seeded: list[tuple[torch.Tensor, int]] = []
    for i in recorder.order:
        if i >= len(ids):
            continue
        node = graph.nodes[ids[i]]
        grad_in = recorder.grad_in.get(i, ())
        if node.is_leaf:
            variable = recorder.fns[i].variable
            before = views.add(recorder.before.get(i))
            grad = variable.grad
            known = recorder.stolen(i, grad)
            after = views.add(known if known is not None else grad)
            if known is not None:
                seeded.append((grad, after))
            rows.append((node, [views.add(g) for g in grad_in], [], (), before, after))
            continue
        grad_out = recorder.grad_out.get(i, ())
        first = grad_in[0] if len(grad_in) == 1 else None
        local = tuple(_local(first, g) for g in grad_out)
        in_slots = [views.add(g) for g in grad_in]
        rows.append((node, in_slots, [views.add(g) for g in grad_out], local, None, None))
    results = views.resolve()
    recorder.grad_views = [(t, v) for t, k in seeded if (v := results[k]) is not None]
    flow: dict[str, Flow] = {}
    steps: list[BackwardStep] = []
    for order, (node, ins, outs, local, before_slot, after_slot) in enumerate(rows):
        grad_in_views = tuple(results[k] for k in ins)
        out_views = tuple(results[k] for k in outs)
        grad_before = None if before_slot is None else results[before_slot]
        grad_after = None if after_slot is None else results[after_slot]
        flow[node.id] = Flow(order, grad_in_views, out_views, grad_before, grad_after)
        steps.append(
            BackwardStep(
                order,
                node.id,
                node.name,
                node.label,
                grad_in_views[0] if grad_in_views else None,
                node.derivative,
                local,
                tuple(zip(node.inputs, out_views, strict=False)),
                param=node.param,
                grad_before=grad_before,
                grad_after=grad_after,
            )
        )
    return replace(graph, flow=flow, steps=tuple(steps))


def _local(grad_in: Any, grad_out: Any) -> TensorView | None:
    """grad_out / grad_in, elementwise: the local derivative of an elementwise op."""
    if not isinstance(grad_in, torch.Tensor) or not isinstance(grad_out, torch.Tensor):
        return None
    if grad_in.shape != grad_out.shape:
        return None
    if grad_in.numel() > SMALL or not grad_in.is_floating_point() or bool((grad_in == 0).any()):
        return None
    return view(grad_out / grad_in)


# ------------------------------------------------------------------ derivatives in words

_DERIVATIVES = {
    "accumulategrad": "adds the incoming gradient into the leaf's .grad",
    "add": "out = self + α·other: ∂/∂self = 1, ∂/∂other = α (summed over broadcast dims)",
    "sub": "out = self - α·other: ∂/∂self = 1, ∂/∂other = -α (summed over broadcast dims)",
    "rsub": "out = other - α·self: ∂/∂self = -α, ∂/∂other = 1",
    "mul": "out = self·other: ∂/∂self = other, ∂/∂other = self",
    "div": "out = self/other: ∂/∂self = 1/other, ∂/∂other = -self/other²",
    "neg": "out = -self: ∂/∂self = -1",
    "pow": "out = self^exponent: ∂/∂self = exponent·self^(exponent-1)",
    "exp": "out = exp(self): ∂/∂self = exp(self) = result",
    "log": "out = log(self): ∂/∂self = 1/self",
    "sqrt": "out = √self: ∂/∂self = 1/(2·result)",
    "abs": "out = |self|: ∂/∂self = sign(self)",
    "sin": "out = sin(self): ∂/∂self = cos(self)",
    "cos": "out = cos(self): ∂/∂self = -sin(self)",
    "tanh": "out = tanh(self): ∂/∂self = 1 - result²",
    "sigmoid": "out = σ(self): ∂/∂self = result·(1 - result)",
    "relu": "out = max(self, 0): ∂/∂self = 1 where result > 0, else 0",
    "threshold": "∂/∂self = 1 where self > threshold, else 0",
    "sum": "out = Σ self: ∂/∂selfᵢ = 1, the gradient is copied to every element",
    "mean": "out = mean(self): ∂/∂selfᵢ = 1/n for every element",
    "mm": "out = self @ mat2: ∂/∂self = grad @ mat2ᵀ, ∂/∂mat2 = selfᵀ @ grad",
    "mv": "out = self @ vec: ∂/∂self = grad ⊗ vec, ∂/∂vec = selfᵀ @ grad",
    "dot": "out = self · tensor: ∂/∂self = grad·tensor, ∂/∂tensor = grad·self",
    "matmul": "out = self @ other: ∂/∂self = grad @ otherᵀ, ∂/∂other = selfᵀ @ grad",
    "bmm": "out = self @ mat2 per batch: ∂/∂self = grad @ mat2ᵀ, ∂/∂mat2 = selfᵀ @ grad",
    "addmm": "out = β·self + α·mat1 @ mat2: ∂/∂self = β·grad (summed to its shape), "
    "∂/∂mat1 = α·grad @ mat2ᵀ, ∂/∂mat2 = α·mat1ᵀ @ grad",
    "t": "out = selfᵀ: the gradient is transposed back",
    "transpose": "out = self with two dims swapped: the gradient is swapped back",
    "permute": "out = self with dims permuted: the gradient is permuted back",
    "view": "out = self reshaped: the gradient is reshaped back",
    "reshapealias": "out = self reshaped: the gradient is reshaped back",
    "unsafeview": "out = self reshaped: the gradient is reshaped back",
    "squeeze": "the gradient is unsqueezed back",
    "unsqueeze": "the gradient is squeezed back",
    "expand": "out = self broadcast: the gradient is summed over the broadcast dims",
    "select": "out = self[index]: the gradient goes to that index, zero elsewhere",
    "index": "out = self[indices]: the gradient is scattered back to those indices",
    "slice": "out = self[a:b]: the gradient goes to that slice, zero elsewhere",
    "cat": "out = cat(tensors): the gradient is split back into the pieces",
    "stack": "out = stack(tensors): the gradient is unstacked into the pieces",
    "clone": "out = copy of self: ∂/∂self = 1",
    "tocopy": "out = self converted (dtype/device): the gradient is converted back",
    "mseloss": "out = mean((self - target)²): ∂/∂self = 2·(self - target)/n",
    "l1loss": "out = mean(|self - target|): ∂/∂self = sign(self - target)/n",
    "nllloss": "out = -mean(self[target]): ∂/∂self = -1/n at each target class, 0 elsewhere",
    "logsoftmax": "∂/∂self = grad - softmax(self)·Σ grad",
    "softmax": "∂/∂self = result·(grad - Σ grad·result)",
    "binarycrossentropy": "∂/∂self = (self - target) / (self·(1 - self)) / n",
    "binarycrossentropywithlogits": "∂/∂self = (σ(self) - target)/n",
    "maximum": "the gradient goes to the larger of the two",
    "minimum": "the gradient goes to the smaller of the two",
    "max": "the gradient goes to the position of the maximum",
    "min": "the gradient goes to the position of the minimum",
    "clamp": "∂/∂self = 1 inside [min, max], 0 where clamped",
    "where": "the gradient goes to self where condition, to other elsewhere",
    "gelu": "∂/∂self = Φ(self) + self·φ(self)",
    "leakyrelu": "∂/∂self = 1 where self > 0, else negative_slope",
    "embedding": "the gradient rows are added to the looked-up rows of weight",
    "dropout": "the gradient is masked and scaled like the forward",
    "nativedropout": "the gradient is masked and scaled like the forward",
    "nativelayernorm": "layer norm: gradient through the normalisation and affine weights",
    "nativebatchnorm": "batch norm: gradient through the batch statistics and affine weights",
    "convolution": "∂/∂input = transposed conv of grad with weight, ∂/∂weight = conv of "
    "input with grad",
}


def derivative(label: str) -> str:
    """The local derivative rule of an op (by friendly label), in words; "" if unknown."""
    return _DERIVATIVES.get(label.replace("_", ""), "")
