"""Run the benchmark suite, print the table, write bench/results.md and bench/results.json.

    .venv/bin/python -m bench            # the full suite (under 5 minutes on 2 cores)
    .venv/bin/python -m bench --quick    # a few iterations of everything (a smoke test)
    .venv/bin/python -m bench --only engine,tui
    .venv/bin/python -m bench --readme   # also put the table in README.md's Performance section

Every ratio is against the plain PyTorch loop measured in the same process, in alternating
blocks, so a change in a shared machine's load hits both alike. torch runs with its default
intra-op threads, as users run it; the `run --quiet` row shows the one-thread ratio beside it
(on a small shared machine, intra-op threads waiting for each other make the plain loop
itself slow and noisy). The 1-minute load average is sampled after each section and printed
with the figures. The scale rows (`big`) run in fresh processes (peak memory is their own);
on a machine with CUDA they run on the GPU as well, and say "no GPU" otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import HERE, LoadMonitor, loadavg, machine

SECTIONS = ("engine", "trace", "scaling", "graph", "tui", "cancel", "launch", "memory", "big")


def _section(name: str) -> Callable[[bool], dict[str, Any]]:
    from . import (
        big,
        cancel,
        engine_overhead,
        graph_bench,
        launch,
        memory,
        scaling,
        trace_overhead,
        tui_bench,
    )

    return {
        "big": big.run,
        "cancel": cancel.run,
        "engine": engine_overhead.run,
        "scaling": scaling.run,
        "graph": graph_bench.run,
        "tui": tui_bench.run,
        "launch": launch.run,
        "memory": memory.run,
        "trace": trace_overhead.run,
    }[name]


# --------------------------------------------------------------------------- the table


def _ms(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{x * 1e3:.{digits}f} ms"


def _s(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f} s"


def _x(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}x"


def _verdict(ok: bool | None) -> str:
    return "info" if ok is None else ("PASS" if ok else "FAIL")


BOWL_NAME = "quadratic_bowl"
MLP_NAME = "MLP 535k, batch 256, SGD momentum"
Row = tuple[str, str, str, str, str, str, str, str]
"""measure, scenario, optdbg, plain or baseline, ratio, target, result, load average"""


def rows(results: dict[str, Any]) -> list[Row]:
    """The issue's table first (each with its goal and PASS/FAIL), then the context rows."""
    out: list[Row] = []
    loads = results.get("section_load", {})
    section = ["engine"]

    def add(measure: str, scenario: str, value: str, base: str, ratio: str, target: str,
            ok: bool | None) -> None:  # fmt: skip
        load = loads.get(section[0])
        where = "–" if load is None else f"{load[0]:.1f}–{load[1]:.1f}"
        out.append((measure, scenario, value, base, ratio, target, _verdict(ok), where))

    eng = results.get("engine")
    if eng:
        section[0] = "engine"
        r, one = eng["mlp"], eng.get("mlp_1thread")
        threads = eng.get("threads", "default")
        beside = f"; 1 thread {_x(one['ratio'])}" if one else ""
        add(f"`run --quiet` per iteration vs plain ({threads} threads{beside})", MLP_NAME,
            _ms(r["engine_iter_s"], 2), _ms(r["plain_iter_s"], 2), _x(r["ratio"]), "≤ 1.05x",
            r["ratio"] <= 1.05)  # fmt: skip
        j = eng.get("json_mlp")
        if j:
            ok = j["ratio"] <= 1.30
            add("`run --json` vs `run --quiet`", MLP_NAME, _ms(j["json_iter_s"], 2),
                _ms(j["quiet_iter_s"], 2), _x(j["ratio"]), "≤ 1.30x", ok)  # fmt: skip
    tr = results.get("trace")
    if tr:
        section[0] = "trace"
        r = tr["mlp"]
        add("`optdbg trace --quiet` per iteration vs the plain script", MLP_NAME,
            _ms(r["quiet_iter_s"], 2), _ms(r["plain_iter_s"], 2), _x(r["ratio"]), "≤ 1.10x",
            r["ratio"] <= 1.10)  # fmt: skip
        add("… with the records `--json` builds", MLP_NAME, _ms(r["records_iter_s"], 2),
            _ms(r["plain_iter_s"], 2), _x(r["records_ratio"]), "", None)  # fmt: skip
    tui = results.get("tui")
    if tui:
        section[0] = "tui"
        r2, r4 = tui.get("rhythm_2"), tui.get("rhythm_4")
        if r2:
            add("TUI `i` at 2 keys/s: key → screen median (max)", MLP_NAME,
                f"{_ms(r2['p50_s'], 0)} ({_ms(r2['max_s'], 0)})", "", "", "≤ 60 ms",
                r2["p50_s"] <= 0.060)  # fmt: skip
        if r4:
            add("TUI `i` at 4 keys/s: median, last key (backlog)", MLP_NAME,
                f"{_ms(r4['p50_s'], 0)}, last {_ms(r4['last_s'], 0)}", "", "",
                "no backlog (max ≤ 250 ms)", r4["max_s"] <= 0.250)  # fmt: skip
        r = tui["throughput_mlp"]
        how = "`c` continue" if r["mode"] == "continue" else "`i` keys (no `c` yet)"
        add(f"TUI continuous running ({how}), it/s", MLP_NAME, f"{r['tui_it_per_s']:.1f}",
            f"{r['plain_it_per_s']:.1f}", _x(r["ratio"]), "≥ 0.90x", r["ratio"] >= 0.9)  # fmt: skip
    ca = results.get("cancel")
    if ca:
        section[0] = "cancel"
        add("escape → a runaway forward cancelled (median, max)", ca["scenario"],
            f"{_ms(ca['cancel_s'])} ({_ms(ca['max_s'])})", "", "", f"≤ {ca['target_s']:.0f} s",
            ca["max_s"] <= ca["target_s"])  # fmt: skip
    la = results.get("launch")
    if la:
        section[0] = "launch"
        add("launch → loaded scenario on screen (pty)", BOWL_NAME, _s(la["usable_s"]),
            f"import torch {_s(la['import_torch_s'])}", f"+{la['usable_minus_torch_s']:.2f} s",
            "≤ torch + 0.50 s", la["usable_minus_torch_s"] <= 0.5)  # fmt: skip
    big = results.get("big")
    if big:
        section[0] = "big"
        for device in ("cpu", "cuda"):
            _big_rows(add, big, device)
    # context: not goals of the issue, kept to see where the time goes
    if eng:
        section[0] = "engine"
        for key, name in (("bowl", BOWL_NAME), ("linreg", "linreg 10000x20")):
            r = eng[key]
            add("engine per iteration (`run --quiet` loop)", name, _ms(r["engine_iter_s"], 2),
                _ms(r["plain_iter_s"], 2), _x(r["ratio"]), "", None)  # fmt: skip
    if tui:
        section[0] = "tui"
        r = tui["throughput_bowl"]
        add("TUI continuous running, it/s", BOWL_NAME, f"{r['tui_it_per_s']:.1f}",
            f"{r['plain_it_per_s']:.1f}", _x(r["ratio"]), "", None)  # fmt: skip
        for key, name in (("latency_bowl", BOWL_NAME), ("latency_mlp", MLP_NAME)):
            r = tui[key]
            add("key → screen p50 / p95, one key at a time (`f b s z`)", name,
                f"{_ms(r['p50_s'])} / {_ms(r['p95_s'])}", f"CPU {_ms(r['cpu_p50_s'])}", "", "",
                None)  # fmt: skip
        if "apply_bowl_s" in tui:
            add("UI thread per op (`_apply`, p50)", MLP_NAME, _ms(tui["apply_mlp_s"], 2),
                f"bowl {_ms(tui['apply_bowl_s'], 2)}", "", "", None)  # fmt: skip
    if la:
        section[0] = "launch"
        add("launch → first frame (pty)", BOWL_NAME, _s(la["first_frame_s"]), "", "", "", None)
        script = la.get("plain_script_s")
        if script is not None and math.isfinite(script):  # what any script pays before its loop
            add("launch → loaded, vs a plain script's start (import torch, one optimizer)",
                BOWL_NAME, _s(la["usable_s"]), _s(script), f"{la['usable_s'] - script:+.2f} s",
                "", None)  # fmt: skip
        add("key → screen after load (pty, `f`)", BOWL_NAME, _ms(la["key_after_load_s"]), "",
            "", "", None)  # fmt: skip
    gr = results.get("graph")
    if gr:
        section[0] = "graph"
        ex, panel, png = gr["extraction"], gr["panel"], gr["export"]
        name = "deep MLP" if ex["nodes"] > 100 else ex["scenario"]
        add(f"graph extraction ({ex['nodes']} nodes, lazy walk)", name,
            _ms(ex["extract_lazy_s"]), "", "", "", None)  # fmt: skip
        fwd, bwd = ex["forward_capture_s"], ex["backward_flow_s"]
        add("forward with graph capture (TUI)", name, _ms(fwd), _ms(ex["forward_s"]),
            _x(fwd / ex["forward_s"]), "", None)  # fmt: skip
        add("backward with gradient flow (TUI)", name, _ms(bwd), _ms(ex["backward_s"]),
            _x(bwd / ex["backward_s"]), "", None)  # fmt: skip
        add(f"graph panel build → frame ({panel['nodes']} nodes)", name,
            _ms(panel["panel_to_frame_s"]), "", "", "≤ 200 ms",
            panel["panel_to_frame_s"] <= 0.200)  # fmt: skip
        add("key → screen, one `f`", name, _ms(panel["key_f_s"], 0), "", "", "", None)
        add(f"PNG export ({png['renderer']})", name,
            _s(png["export_s"]) if png["ok"] else "failed", "", "", "", None)  # fmt: skip
    sc = results.get("scaling")
    if sc:
        section[0] = "scaling"
        e, t = sc["engine"], sc["engine+tui_capture"]
        fine = t["repeated_per_iteration"] == 0
        add("tensor elements summarized per iteration (× params)", MLP_NAME,
            f"{t['elements_x_params_per_iteration']:.1f}x with TUI",
            f"{e['elements_x_params_per_iteration']:.1f}x engine", "",
            "each tensor once per op", fine)  # fmt: skip
    mem = results.get("memory")
    if mem:
        section[0] = "memory"
        s, p = mem["session"], mem["plain"]
        add(f"peak RSS, {s['iterations']} iterations with history", MLP_NAME,
            f"{s['peak_rss_mb']:.0f} MB", f"{p['peak_rss_mb']:.0f} MB plain", "",
            f"< {mem['limit_mb']} MB", s["peak_rss_mb"] < mem["limit_mb"])  # fmt: skip
    return out


BIG_NAMES = {"adam": "one 10^8-element parameter, Adam", "lm": "transformer LM ~10M params"}


def _big_rows(add: Callable[..., None], big: dict[str, Any], device: str) -> None:
    """Each op's key → screen beyond the op's own time, undo, and peak memory vs plain."""
    for case, name in BIG_NAMES.items():
        if big["numel"] != 10**8:
            name += " (quick: smaller)"
        where = f"{name}, {device.upper()}"
        r = big.get(f"{case}_{device}")
        if r is None:
            add("each key / undo / peak memory", where, "no GPU", "", "", "", None)
            continue
        plain, tui = r["plain"], r["tui"]
        run = r.get("run", {"undo_s": None, "peak_rss_mb": 0.0, "gpu_peak_mb": 0.0})
        over = {op: tui["op_s"][op] - plain["op_s"][op] for op in plain["op_s"]}
        worst = max(over, key=lambda op: over[op])
        keys = " ".join(f"{op[0]} {tui['op_s'][op]:.2f}" for op in plain["op_s"])
        ops = " ".join(f"{op[0]} {plain['op_s'][op]:.2f}" for op in plain["op_s"])
        add("TUI each key → screen, s (beyond the op: worst)", where, keys, f"plain {ops}",
            f"+{over[worst]:.2f} s ({worst})", "≤ op + 1 s", over[worst] <= 1.0)  # fmt: skip
        add("TUI undo → screen (`u`)", where, _s(tui["undo_s"]), f"run {_s(run['undo_s'])}", "",
            "≤ 2 s", tui["undo_s"] <= 2.0)  # fmt: skip
        key = "gpu_peak_mb" if device == "cuda" else "peak_rss_mb"
        what = "GPU memory" if device == "cuda" else "RSS"
        p_mb, t_mb, r_mb = plain[key], tui[key], run[key] or 0.0
        shown = f"{t_mb:.0f} MB, " + (f"{r_mb:.0f} MB" if r_mb else "–")
        add(f"peak {what}: TUI, run", where, shown,
            f"{p_mb:.0f} MB plain", f"{max(t_mb, r_mb) / p_mb:.2f}x", "≤ plain + 25%",
            max(t_mb, r_mb) <= 1.25 * p_mb)  # fmt: skip


def op_rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    eng = results.get("engine") or {}
    out = []
    for key in ("bowl", "mlp", "linreg"):
        if key not in eng:
            continue
        for op, r in eng[key]["ops"].items():
            us = [f"{r[k] * 1e6:.0f} µs" for k in ("plain_s", "engine_s")]
            out.append((key, op, *us, f"{r['overhead_s'] * 1e6:+.0f} µs", f"{r['ratio']:.2f}x"))
    return out


def markdown_table(header: tuple[str, ...], body: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |" for r in body]
    return "\n".join(lines)


HEADER = ("measure", "scenario", "optdbg", "plain / baseline", "ratio", "target", "result", "load")


def report(results: dict[str, Any]) -> str:
    m = results["machine"]
    load = results["load"]
    quick = ", quick mode" if results["quick"] else ""
    parts = [
        f"# optdbg benchmark results ({results['date']}{quick})",
        "",
        f"Machine: {m['cpus']} CPU cores ({m['cpu']}), GPU: {m['gpu']}, Python {m['python']}, "
        f"torch {m['torch']} (intra-op threads: {m['torch_threads']}), {m['platform']}. "
        f"Shared: 1-minute load average during the run min {load.get('min')}, "
        f"median {load.get('median')}, max {load.get('max')}. "
        f"Suite time {results['seconds']:.0f} s." + _other_dates(results),
        "",
        "The load column is the 1-minute load average at the start and end of the row's section.",
        "",
        markdown_table(HEADER, rows(results)),
    ]
    ops = op_rows(results)
    if ops:
        parts += [
            "",
            "Per op (median), the engine with default settings against the plain call:",
            "",
            markdown_table(("scenario", "op", "plain", "engine", "overhead", "ratio"), ops),
        ]
    parts += ["", "Raw numbers: results.json next to this file.", ""]
    return "\n".join(parts)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few iterations of everything")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for results.md/.json")
    parser.add_argument(
        "--readme",
        action="store_true",
        help="also replace the figures between the bench markers in README.md",
    )
    parser.add_argument(
        "--keep-others",
        action="store_true",
        help="the sections not run keep their figures (and dates) from the previous "
        "results.json: a long section run alone, the others later",
    )
    ns = parser.parse_args(argv)
    only = [s.strip() for s in ns.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")

    monitor = LoadMonitor()
    monitor.sample()
    started = time.perf_counter()
    results: dict[str, Any] = {
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "quick": ns.quick,
        "machine": machine(),
    }
    timings: dict[str, float] = {}
    section_load: dict[str, tuple[float, float]] = {}
    for name in SECTIONS:
        if name not in only:
            continue
        t0 = time.perf_counter()
        before = loadavg()
        print(f"[bench] {name}…", file=sys.stderr, flush=True)
        results[name] = _section(name)(ns.quick)
        timings[name] = round(time.perf_counter() - t0, 1)
        monitor.sample()
        section_load[name] = (round(before, 2), round(loadavg(), 2))
    dates = {name: results["date"] for name in timings}
    if ns.keep_others:
        _keep_others(ns.out / "results.json", results, timings, section_load, dates)
    results["section_seconds"] = timings
    results["section_load"] = section_load
    results["section_date"] = dates
    results["seconds"] = time.perf_counter() - started
    results["load"] = monitor.summary()
    text = report(results)
    print(text)
    ns.out.mkdir(parents=True, exist_ok=True)
    (ns.out / "results.md").write_text(text, encoding="utf-8")
    (ns.out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    if ns.readme:
        update_readme(HERE.parent / "README.md", results)
    return 0


def _keep_others(
    path: Path,
    results: dict[str, Any],
    timings: dict[str, float],
    loads: dict[str, tuple[float, float]],
    dates: dict[str, str],
) -> None:
    """Fill the sections this run skipped from the previous run's results (if any)."""
    if not path.exists():
        return
    previous = json.loads(path.read_text(encoding="utf-8"))
    for name in SECTIONS:
        if name in timings or name not in previous:
            continue
        results[name] = previous[name]
        timings[name] = previous.get("section_seconds", {}).get(name, 0.0)
        if name in previous.get("section_load", {}):
            start, end = previous["section_load"][name]
            loads[name] = (start, end)
        dates[name] = previous.get("section_date", {}).get(name, previous["date"])


START, END = "<!-- bench-results:start -->", "<!-- bench-results:end -->"


def _other_dates(results: dict[str, Any]) -> str:
    """Where sections come from an earlier run (--keep-others): which, and when."""
    earlier: dict[str, list[str]] = {}
    for name, date in results.get("section_date", {}).items():
        if date != results["date"]:
            earlier.setdefault(date, []).append(name)
    return "".join(
        f" The {', '.join(names)} rows were taken {date}, in an earlier run (see each row's load)."
        for date, names in sorted(earlier.items())
    )


def update_readme(path: Path, results: dict[str, Any]) -> None:
    """Replace what is between the bench markers in README.md with the machine line and the
    table of this run (the rest of the README is left alone)."""
    text = path.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{path}: no {START} ... {END} markers to put the figures between")
    m, load = results["machine"], results["load"]
    body = "\n".join(
        [
            START,
            f"Taken {results['date']} on a shared {m['cpus']}-core CPU ({m['cpu']}), "
            f"GPU: {m['gpu']}, "
            f"Python {m['python']}, torch {m['torch']}, torch intra-op threads "
            f"{m['torch_threads']}; 1-minute load average during the run "
            f"{load.get('min')}–{load.get('max')} (other work on the machine)."
            + _other_dates(results),
            "",
            markdown_table(HEADER, rows(results)),
            END,
        ]
    )
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    path.write_text(head + body + tail, encoding="utf-8")
