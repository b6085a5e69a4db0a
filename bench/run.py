"""Run the benchmark suite, print the table, write bench/results.md and bench/results.json.

    .venv/bin/python -m bench            # the full suite (under 5 minutes on 2 cores)
    .venv/bin/python -m bench --quick    # a few iterations of everything (a smoke test)
    .venv/bin/python -m bench --only engine,tui
    .venv/bin/python -m bench --readme   # also put the table in README.md's Performance section

Every ratio is against the plain PyTorch loop measured in the same run, in alternating
blocks. torch runs single-threaded (`torch.set_num_threads(1)`) for optdbg and the plain loop
alike: on a small shared machine, two intra-op threads that wait for each other make a plain
loop 5 to 20 times slower and its timings meaningless.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import HERE, LoadMonitor, machine

SECTIONS = ("engine", "scaling", "graph", "tui", "launch", "memory")


def _section(name: str) -> Callable[[bool], dict[str, Any]]:
    from . import engine_overhead, graph_bench, launch, memory, scaling, tui_bench

    return {
        "engine": engine_overhead.run,
        "scaling": scaling.run,
        "graph": graph_bench.run,
        "tui": tui_bench.run,
        "launch": launch.run,
        "memory": memory.run,
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
Row = tuple[str, str, str, str, str, str, str]
"""measure, scenario, optdbg, plain or baseline, ratio, target, result"""


def rows(results: dict[str, Any]) -> list[Row]:
    out: list[Row] = []

    def add(measure: str, scenario: str, value: str, base: str, ratio: str, target: str,
            ok: bool | None) -> None:  # fmt: skip
        out.append((measure, scenario, value, base, ratio, target, _verdict(ok)))

    eng = results.get("engine")
    if eng:
        names = {"bowl": BOWL_NAME, "mlp": "MLP 535k, batch 256", "linreg": "linreg 10000x20"}
        for key in ("bowl", "mlp", "linreg"):
            r = eng[key]
            mlp = key == "mlp"
            add("engine per iteration (`run --quiet` loop)", names[key],
                _ms(r["engine_iter_s"], 2), _ms(r["plain_iter_s"], 2), _x(r["ratio"]),
                "≤ 1.10x" if mlp else "", r["ratio"] <= 1.10 if mlp else None)  # fmt: skip
    tui = results.get("tui")
    if tui:
        for key, name in (("throughput_mlp", "MLP 535k"), ("throughput_bowl", BOWL_NAME)):
            r = tui[key]
            how = "`c` continue" if r["mode"] == "continue" else "`i` keys (no `c` yet)"
            mlp = key == "throughput_mlp"
            add(f"TUI continuous running ({how}), it/s", name, f"{r['tui_it_per_s']:.1f}",
                f"{r['plain_it_per_s']:.1f}", _x(r["ratio"]), "≥ 0.90x" if mlp else "",
                r["ratio"] >= 0.9 if mlp else None)  # fmt: skip
        for key, name in (("latency_bowl", BOWL_NAME), ("latency_mlp", "MLP 535k")):
            r = tui[key]
            add("key → screen p50 (`f b s z`)", name, _ms(r["p50_s"]),
                f"CPU {_ms(r['cpu_p50_s'])}", "", "≤ 50 ms", r["p50_s"] <= 0.050)  # fmt: skip
            add("key → screen p95", name, _ms(r["p95_s"]), f"CPU {_ms(r['cpu_p95_s'])}", "",
                "≤ 100 ms", r["p95_s"] <= 0.100)  # fmt: skip
        if "apply_bowl_s" in tui:
            grows = tui["apply_mlp_s"] > 2 * tui["apply_bowl_s"] + 0.005
            add("UI thread per op (`_apply`, p50)", "MLP 535k", _ms(tui["apply_mlp_s"], 2),
                f"bowl {_ms(tui['apply_bowl_s'], 2)}", "", "not growing with the model",
                not grows)  # fmt: skip
    la = results.get("launch")
    if la:
        add("launch → first frame (pty)", BOWL_NAME, _s(la["first_frame_s"]), "", "",
            "≤ 0.50 s", la["first_frame_s"] <= 0.5)  # fmt: skip
        add("launch → usable (scenario shown)", BOWL_NAME, _s(la["usable_s"]),
            f"import torch {_s(la['import_torch_s'])}", f"+{la['usable_minus_torch_s']:.2f} s",
            "≤ torch + 0.50 s", la["usable_minus_torch_s"] <= 0.5)  # fmt: skip
        if la.get("plain_script_s") == la.get("plain_script_s"):  # not NaN
            add("… a plain script: import torch + first optimizer", "", "",
                _s(la["plain_script_s"]), "", "", None)  # fmt: skip
        add("key → screen after load (pty, `f`)", BOWL_NAME, _ms(la["key_after_load_s"]), "",
            "", "", None)  # fmt: skip
    gr = results.get("graph")
    if gr:
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
        e, t = sc["engine"], sc["engine+tui_capture"]
        fine = t["repeated_per_iteration"] == 0
        add("tensor elements summarized per iteration (× params)", "MLP 535k",
            f"{t['elements_x_params_per_iteration']:.1f}x with TUI",
            f"{e['elements_x_params_per_iteration']:.1f}x engine", "",
            "each tensor once per op", fine)  # fmt: skip
        add("… summaries repeated on the same data, per iteration", "MLP 535k",
            f"{t['repeated_per_iteration']:.0f}", "", "", "0", fine)  # fmt: skip
    mem = results.get("memory")
    if mem:
        s, p = mem["session"], mem["plain"]
        add(f"peak RSS, {s['iterations']} iterations with history", "MLP 535k",
            f"{s['peak_rss_mb']:.0f} MB", f"{p['peak_rss_mb']:.0f} MB plain", "",
            f"< {mem['limit_mb']} MB", s["peak_rss_mb"] < mem["limit_mb"])  # fmt: skip
    return out


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


HEADER = ("measure", "scenario", "optdbg", "plain / baseline", "ratio", "target", "result")


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
        f"Suite time {results['seconds']:.0f} s.",
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
    ns = parser.parse_args(argv)
    only = [s.strip() for s in ns.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")

    import torch

    torch.set_num_threads(1)
    monitor = LoadMonitor()
    monitor.sample()
    started = time.perf_counter()
    results: dict[str, Any] = {
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "quick": ns.quick,
        "machine": machine(),
    }
    timings: dict[str, float] = {}
    for name in SECTIONS:
        if name not in only:
            continue
        t0 = time.perf_counter()
        print(f"[bench] {name}…", file=sys.stderr, flush=True)
        results[name] = _section(name)(ns.quick)
        timings[name] = round(time.perf_counter() - t0, 1)
        monitor.sample()
    results["section_seconds"] = timings
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


START, END = "<!-- bench-results:start -->", "<!-- bench-results:end -->"


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
            f"Taken {results['date']} on a shared {m['cpus']}-core CPU ({m['cpu']}), no GPU, "
            f"Python {m['python']}, torch {m['torch']}, torch intra-op threads "
            f"{m['torch_threads']}; 1-minute load average during the run "
            f"{load.get('min')}–{load.get('max')} (other work on the machine).",
            "",
            markdown_table(HEADER, rows(results)),
            END,
        ]
    )
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    path.write_text(head + body + tail, encoding="utf-8")
