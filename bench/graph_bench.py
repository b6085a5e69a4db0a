"""A ~1,000-node graph (bench/scenarios/deep_mlp.py): extraction, the graph panel, PNG export.

- extraction: `session.graph()` after a forward (the lazy walk of grad_fn), and the cost the
  TUI adds to each forward and backward by watching the graph (`capture_graph`: node data
  and modules at forward, the gradient flow through every node at backward);
- panel build: setting the graph on the TUI's GraphPanel (its tree is rebuilt) until the
  next frame, under Pilot at 160x48;
- key to screen for one `f` on this scenario (extraction + panel + everything else);
- PNG export: `engine.export.export_graph` of the graph with its flow, renderer as found.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from .common import BOWL, DEEP, median, perf
from .tui_bench import SIZE, app_class, frame_after, wait_until


def _extraction(spec: str, reps: int) -> dict[str, Any]:
    from optdbg.engine import Session

    session = Session.open(spec)
    lazy, fwd_plain, fwd_capture, bwd_plain, bwd_capture, walk = [], [], [], [], [], []
    nodes = 0
    for _ in range(reps + 1):
        for capture, fwd, bwd in ((False, fwd_plain, bwd_plain), (True, fwd_capture, bwd_capture)):
            session.capture_graph = capture
            t0 = perf()
            session.forward()
            t1 = perf()
            if not capture:
                graph = session.graph()
                lazy.append(perf() - t1)
            else:
                graph = session.graph()
                assert graph is not None
                walk.append(graph.seconds)
            t2 = perf()
            session.backward()
            t3 = perf()
            session.zero_grad()
            fwd.append(t1 - t0)
            bwd.append(t3 - t2)
            assert graph is not None
            nodes = len(graph)
    trim = slice(1, None)  # the first round warms up
    return {
        "scenario": spec,
        "nodes": nodes,
        "extract_lazy_s": median(lazy[trim]),
        "extract_walk_s": median(walk[trim]),
        "forward_s": median(fwd_plain[trim]),
        "forward_capture_s": median(fwd_capture[trim]),
        "backward_s": median(bwd_plain[trim]),
        "backward_flow_s": median(bwd_capture[trim]),
    }


async def _panel(spec: str, reps: int) -> dict[str, Any]:
    from optdbg.engine import Session
    from optdbg.tui.graphview import GraphPanel

    app = app_class()(Session.open(spec))
    build, to_frame = [], []
    key_f = float("nan")
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(app, lambda: len(app.bench_applied) >= 1)
        await pilot.pause()
        # one key press only: on a big model every op can take many seconds in the TUI
        n0 = len(app.bench_applied)
        t0 = perf()
        await pilot.press("f")
        await wait_until(app, lambda: len(app.bench_applied) > n0, 600)
        t_applied = app.bench_applied[n0][0]
        await wait_until(app, lambda: frame_after(app.bench_frames, t_applied) is not None, 600)
        t_frame = frame_after(app.bench_frames, t_applied)
        assert t_frame is not None
        key_f = t_frame - t0
        await wait_until(app, lambda: app.view is not None and app.view.graph is not None)
        await pilot.pause()
        panel = app.query_one(GraphPanel)
        graph = app.view.graph
        nodes = len(graph)
        for _ in range(reps):
            panel.graph = None
            await pilot.pause()
            t0 = perf()
            panel.graph = graph
            t1 = perf()
            await wait_until(app, lambda t=t1: frame_after(app.bench_frames, t) is not None)
            t_frame = frame_after(app.bench_frames, t1)
            assert t_frame is not None
            build.append(t1 - t0)
            to_frame.append(t_frame - t0)
            await pilot.pause()
    return {
        "nodes": nodes,
        "panel_build_s": median(build),
        "panel_to_frame_s": median(to_frame),
        "panel_to_frame_max_s": max(to_frame),
        "key_f_s": key_f,
    }


def _export(spec: str, reps: int) -> dict[str, Any]:
    from optdbg.engine import Session
    from optdbg.engine.export import export_graph, find_renderer

    session = Session.open(spec)
    session.capture_graph = True
    session.forward()
    session.backward()
    graph = session.graph()
    assert graph is not None
    renderer = find_renderer()
    times = []
    result = None
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(reps):
            t0 = perf()
            result = export_graph(graph, Path(tmp) / "graph.png", title="bench", force=True)
            times.append(perf() - t0)
        size = (Path(tmp) / "graph.png").stat().st_size if result and result.ok else 0
    return {
        "nodes": len(graph),
        "renderer": renderer.kind if renderer else None,
        "ok": bool(result and result.ok),
        "message": result.message if result else "",
        "export_s": median(times),
        "png_bytes": size,
    }


def run(quick: bool = False) -> dict[str, Any]:
    spec = BOWL if quick else DEEP
    out = {"extraction": _extraction(spec, 2 if quick else 5)}
    out["panel"] = asyncio.run(_panel(spec, 2 if quick else 5))
    out["export"] = _export(spec, 1)
    return out
