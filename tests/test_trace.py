"""`optdbg trace`: real training scripts, traced, against the same scripts run plainly.

Each script in tests/trace_scripts is written like public training code and saves its final
state with torch.save to a path given on its command line; the traced run must print the
same, save bit-identical state, and give one record per call from the right line.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from optdbg.engine import fmt
from optdbg.engine.trace import trace

SCRIPTS = Path(__file__).parent / "trace_scripts"
OPTDBG = Path(sys.executable).parent / "optdbg"
ENV = {**os.environ, "PYTHONIOENCODING": "utf-8"}


def _run(cmd: list[str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV)


def plain(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return _run([sys.executable, str(SCRIPTS / script), *args])


def traced(*args: str) -> subprocess.CompletedProcess[str]:
    return _run([str(OPTDBG), "trace", *args])


def markers(script: str) -> dict[str, set[int]]:
    """Line numbers of the script's calls, from its `# op: NAME` comments."""
    found: dict[str, set[int]] = {}
    text = (SCRIPTS / script).read_text().splitlines()
    for n, line in enumerate(text, 1):
        m = re.search(r"# op: (\w+)", line)
        if m:
            found.setdefault(m.group(1), set()).add(n)
    return found


def same(a: Any, b: Any) -> bool:
    """Bit for bit: tensors equal with the same dtype (NaN equal to NaN), recursively."""
    if isinstance(a, torch.Tensor):
        return (
            isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and bool(torch.equal(a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8)))
        )
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return bool(a == b)


def compare(tmp_path: Path, script: str, *args: str, strict: bool = True) -> list[dict[str, Any]]:
    """Run the script plainly and under `optdbg trace --json`; assert the same output and
    final state; return the records (each checked to come from a marked line)."""
    a, b = tmp_path / "plain.pt", tmp_path / "traced.pt"
    p = (
        plain(script, *args, str(a))
        if script == "lbfgs.py"
        else plain(script, *args, "--save", str(a))
    )
    assert p.returncode == 0, p.stderr
    flags = ["--json", "--strict"] if strict else ["--json"]
    save = [str(b)] if script == "lbfgs.py" else ["--save", str(b)]
    t = traced(*flags, str(SCRIPTS / script), *args, *save)
    records = [json.loads(line) for line in t.stdout.splitlines()]
    assert t.stderr == p.stdout  # the script's own output, and nothing of optdbg's
    assert same(torch.load(a), torch.load(b)), "final values differ from the plain run"
    lines = markers(script)
    assert [r["index"] for r in records] == list(range(len(records)))
    for r in records:
        file, line = r["where"].split(":")
        assert file == script
        assert int(line) in lines[r["op"]], r
        assert (r["optimizer"] is None) == (r["op"] == "backward")
    t.records = records  # type: ignore[attr-defined]
    t.status = t.returncode  # type: ignore[attr-defined]
    return records


def test_mnist_like_argparse_main(tmp_path: Path) -> None:
    records = compare(tmp_path, "mnist_like.py", "--epochs", "2", "--batch-size", "16")
    assert [r["op"] for r in records] == ["zero_grad", "backward", "step"] * 8
    assert all(r["warnings"] == [] for r in records)
    assert {r["function"] for r in records} == {"train"}
    first = records[0]
    assert list(first["params"]) == [
        "model.fc1.weight",
        "model.fc1.bias",
        "model.fc2.weight",
        "model.fc2.bias",
    ]
    assert first["params"]["model.fc1.weight"]["shape"] == [32, 64]


def test_gan_two_adam_optimizers(tmp_path: Path) -> None:
    records = compare(tmp_path, "gan.py", "--iters", "3")
    ops = [(r["op"], r["optimizer"]) for r in records]
    one = [
        ("zero_grad", "optD"),
        ("backward", None),
        ("backward", None),
        ("step", "optD"),
        ("zero_grad", "optG"),
        ("backward", None),
        ("step", "optG"),
    ]
    assert ops == one * 3
    assert all(r["warnings"] == [] for r in records)  # errG through netD is harmless
    assert {n.split(".")[0] for n in records[0]["params"]} == {"netD", "netG"}


def test_gan_losses_of_the_two_networks_are_not_one_series(tmp_path: Path) -> None:
    # pix2pix-style: G's loss is 100 x an L1 term, about 100x D's; judged in one series with
    # D's losses, G's first loss was a divergence of D's
    records = compare(tmp_path, "gan.py", "--iters", "20", "--l1", "100")
    assert all(r["warnings"] == [] for r in records)


def test_gan_divergence_is_judged_on_its_own_loss_series(tmp_path: Path) -> None:
    records = compare(tmp_path, "gan.py", "--iters", "30", "--lr-g", "0.5", strict=False)
    backward = markers("gan.py")["backward"]
    errG = f"gan.py:{max(backward)}"
    found = [(r, w) for r in records for w in r["warnings"] if w["code"] == "diverging"]
    assert {r["where"] for r, _ in found} >= {errG}
    for r, w in found:
        # the losses the message shows are the latest of that backward's own line
        mine = [x["loss"] for x in records[: r["index"] + 1] if x["where"] == r["where"]]
        shown = re.search(r"forwards: (.*?)\. The learning", w["message"])
        assert shown is not None, w["message"]
        values = shown.group(1).split(" → ")
        assert values == [fmt.num(v, 4) for v in mine[-len(values) :]]
        # ... and the optimizer stepping on that loss is the one whose lr it names
        assert ("lr=0.5)" in w["message"]) == (r["where"] == errG)


def test_model_left_in_eval_mode_is_flagged_at_its_first_training_backward(
    tmp_path: Path,
) -> None:
    records = compare(tmp_path, "eval_mode.py", "--epochs", "2", strict=False)
    assert [r["op"] for r in records] == ["zero_grad", "backward", "step"] * 8
    warned = [(r["index"], w["code"], w["message"]) for r in records for w in r["warnings"]]
    # epoch 0 trains in train mode; evaluate() leaves it in eval: epoch 1's first backward
    assert [(i, code) for i, code, _ in warned] == [(13, "eval-mode-training")]
    assert "model.2 is in eval mode" in warned[0][2]


def test_dead_relus_of_a_script_module_are_flagged(tmp_path: Path) -> None:
    records = compare(tmp_path, "dead_relu.py", "--steps", "3", strict=False)
    warned = [(r["index"], w["code"], w["message"]) for r in records for w in r["warnings"]]
    assert [(i, code) for i, code, _ in warned] == [(1, "dead-relu")]
    assert warned[0][2].startswith("net.act at the forward at op 1: 32 of its 32 units")


def test_the_relu_probe_leaves_the_script_modules_as_they_were(tmp_path: Path) -> None:
    """It hooks no module (a module holding a hook no longer pickles) and is gone after."""
    from torch.nn.modules import module as torch_module

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with trace() as t:
        for _ in range(2):
            optimizer.zero_grad()
            model(torch.randn(5, 3)).pow(2).mean().backward()
            optimizer.step()
        assert torch_module._global_forward_hooks  # the probe watches...
        assert all(not m._forward_hooks for m in model.modules())  # ... hooking no module
        torch.save(model, tmp_path / "model.pt")  # the whole module, pickled
    assert not torch_module._global_forward_hooks
    assert len(t.records) == 6


def test_lbfgs_closure_backwards_inside_its_step(tmp_path: Path) -> None:
    records = compare(tmp_path, "lbfgs.py", "2")
    ops = [r["op"] for r in records]
    assert ops.count("step") == 2
    assert ops[-1] == "step"
    before_first = ops[: ops.index("step")]
    assert len(before_first) >= 2 and before_first == ["zero_grad", "backward"] * (
        len(before_first) // 2
    )
    assert {r["function"] for r in records if r["op"] == "backward"} == {"closure"}
    assert all(r["warnings"] == [] for r in records)


def test_gradient_accumulation_with_clipping_is_clean(tmp_path: Path) -> None:
    records = compare(tmp_path, "accumulate.py", "--accum", "4")
    ops = [r["op"] for r in records]
    assert ops == ["zero_grad"] + (["backward"] * 4 + ["step", "zero_grad"]) * 3
    assert all(r["warnings"] == [] for r in records)


def test_forgotten_zero_grad_is_flagged_on_its_backward(tmp_path: Path) -> None:
    a = tmp_path / "plain.pt"
    p = plain("forgot_zero_grad.py", "--epochs", "2", "--save", str(a))
    t = traced("--json", "--strict", str(SCRIPTS / "forgot_zero_grad.py"), "--epochs", "2")
    assert t.returncode == 1  # --strict: a warning fired
    assert t.stderr == p.stdout
    records = [json.loads(line) for line in t.stdout.splitlines()]
    assert [r["op"] for r in records] == ["backward", "step"] * 4
    backward_line = next(iter(markers("forgot_zero_grad.py")["backward"]))
    warned = [r["index"] for r in records if r["warnings"]]
    assert warned == [2, 4, 6]  # every backward after the first, none on the first
    for i in warned:
        r = records[i]
        assert r["where"] == f"forgot_zero_grad.py:{backward_line}"
        codes = {w["code"] for w in r["warnings"]}
        assert codes == {"grad-accumulated"}
        assert len(r["warnings"]) == 1  # one per backward, naming every parameter
    message = records[2]["warnings"][0]["message"]
    names = "model.0.weight, model.0.bias, model.2.weight, model.2.bias"
    assert f"4 gradients ({names}) were the sum of 2 backward passes" in message
    # the records' final values are the plain run's, bit for bit
    state = torch.load(a)
    last = records[-1]["params"]
    for name, value in state.items():
        assert last[f"model.{name}"] == value.tolist()


def test_silenced_code_is_not_reported() -> None:
    script = str(SCRIPTS / "forgot_zero_grad.py")
    t = traced("--quiet", "--strict", "--silence", "grad-accumulated", script, "--epochs", "1")
    assert t.returncode == 0 and "warnings: none" in t.stderr, t.stderr
    bad = traced("--quiet", "--silence", "grad-acumulated", script)
    assert bad.returncode == 2 and "unknown code(s) 'grad-acumulated'" in bad.stderr
    bad = traced("--quiet", "--threshold", "ddp_grad_rtol=x", script)
    assert bad.returncode == 2 and "'x' is not a number" in bad.stderr


def test_strict_is_zero_on_clean_scripts_and_quiet_summary(tmp_path: Path) -> None:
    t = traced("--quiet", "--strict", str(SCRIPTS / "accumulate.py"))
    assert t.returncode == 0, t.stderr
    p = plain("accumulate.py")
    assert t.stdout == p.stdout  # --quiet leaves the script's stdout alone
    assert "19 ops (12 losses, 3 steps, 1 optimizer)" in t.stderr, t.stderr
    assert "warnings: none" in t.stderr


def test_max_ops_stops_the_script(tmp_path: Path) -> None:
    t = traced("--json", "--max-ops", "5", str(SCRIPTS / "gan.py"), "--iters", "3")
    assert t.returncode == 0
    assert len(t.stdout.splitlines()) == 5
    assert "stopped the script (--max-ops 5)" in t.stderr


def test_bad_scripts(tmp_path: Path) -> None:
    missing = traced("--json", str(tmp_path / "nope.py"))
    assert missing.returncode == 2
    assert "nope.py: no such file" in missing.stderr and "Traceback" not in missing.stderr
    binary = tmp_path / "model.pt"
    binary.write_bytes(b"\x80\x02\x00\x00binary")
    assert traced("--json", str(binary)).returncode == 2
    crash = tmp_path / "crash.py"
    crash.write_text(
        "import torch\n"
        "w = torch.ones(2, requires_grad=True)\n"
        "opt = torch.optim.SGD([w], lr=0.1)\n"
        "def main():\n"
        "    loss = (w * 2).sum()\n"
        "    loss.backward()\n"
        "    loss.backward()\n"
        "main()\n"
    )
    p = _run([sys.executable, str(crash)])
    t = traced("--json", str(crash))
    assert t.returncode == p.returncode == 1
    assert "optdbg" not in t.stderr and "runpy" not in t.stderr
    assert 'crash.py", line 7, in main' in t.stderr
    assert t.stderr.splitlines()[-1] == p.stderr.splitlines()[-1]
    records = [json.loads(line) for line in t.stdout.splitlines()]
    assert [r["op"] for r in records] == ["backward", "backward"]
    assert records[1]["error"]["type"] == "RuntimeError"
    assert [w["code"] for w in records[1]["warnings"]] == ["backward-twice"]
    exits = tmp_path / "exits.py"
    exits.write_text("import sys\nprint('hello', sys.argv[1:])\nsys.exit(3)\n")
    t = traced("--quiet", str(exits), "--json", "x")
    assert t.returncode == 3
    assert t.stdout == "hello ['--json', 'x']\n"
    assert "no op was seen" in t.stderr


def test_ctrl_c_stops_the_script_with_130(tmp_path: Path) -> None:
    forever = tmp_path / "forever.py"
    forever.write_text(
        "import torch\n"
        "w = torch.ones(2, requires_grad=True)\n"
        "opt = torch.optim.SGD([w], lr=1e-3)\n"
        "print('ready', flush=True)\n"
        "while True:\n"
        "    opt.zero_grad()\n"
        "    (w ** 2).sum().backward()\n"
        "    opt.step()\n"
    )
    proc = subprocess.Popen(
        [str(OPTDBG), "trace", "--quiet", str(forever)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "KeyboardInterrupt" in err and "optdbg/" not in err.split("KeyboardInterrupt")[0]


def test_python_api_matches_a_plain_loop() -> None:
    def train(seed: int) -> tuple[torch.nn.Module, list[float]]:
        torch.manual_seed(seed)
        model = torch.nn.Linear(3, 1)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
        x, y = torch.randn(8, 3), torch.randn(8, 1)
        losses = []
        for _ in range(3):
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return model, losses

    plain_model, plain_losses = train(0)
    with trace() as t:
        model, losses = train(0)
    assert losses == plain_losses
    assert same(model.state_dict(), plain_model.state_dict())
    records = t.records
    assert [r["op"] for r in records] == ["zero_grad", "backward", "step"] * 3
    assert [r["loss"] for r in records if r["op"] == "backward"] == plain_losses
    assert records[-1]["params"]["model.weight"] == plain_model.weight.tolist()
    assert records[1]["function"] == "train"
    assert t.warnings() == []
    # uninstalled: PyTorch is as it was
    assert torch.Tensor.backward.__module__ == "torch._tensor"


def test_an_optimizer_made_before_the_block_is_traced_from_its_first_step() -> None:
    """A notebook builds the model and optimizer in one cell and traces the loop in the next,
    which never calls zero_grad: the optimizer is found at its first step, and the second
    backward is flagged. No backward runs a hook of optdbg's (which parameters it reached is
    read from their .grad afterwards); the values are the plain loop's."""
    x = torch.randn(4, 3)

    def build() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        torch.manual_seed(0)
        used, unused = torch.nn.Linear(3, 1), torch.nn.Linear(3, 1)
        return used, torch.optim.SGD([*used.parameters(), *unused.parameters()], lr=0.1)

    def loop(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> list[object]:
        hooks = []
        for _ in range(2):
            model(x).pow(2).mean().backward()
            hooks += [p._backward_hooks for g in optimizer.param_groups for p in g["params"]]
            optimizer.step()
        return hooks

    plain_model, plain_optimizer = build()
    loop(plain_model, plain_optimizer)
    model, optimizer = build()
    with trace() as t:
        hooks = loop(model, optimizer)
    assert same(model.state_dict(), plain_model.state_dict())
    assert not any(hooks)
    assert [r["op"] for r in t.records] == ["backward", "step"] * 2
    warned = [(r["index"], w["code"]) for r in t.records for w in r["warnings"]]
    assert [i for i, code in warned if code == "grad-accumulated"] == [2]
    (message,) = [w["message"] for w in t.records[2]["warnings"] if w["code"] == "grad-accumulated"]
    assert message.startswith("2 gradients") and "the step at op 1 had already used" in message


def test_ddp_under_torchrun_traces_every_rank(tmp_path: Path) -> None:
    """2 processes, gloo on CPU: each rank's records in its file, final values bit for bit
    those of the plain torchrun run."""

    def torchrun(port: str, *cmd: str) -> subprocess.CompletedProcess[str]:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
        return _run([*launcher, "--master-port", port, *cmd], timeout=300)

    script = str(SCRIPTS / "ddp.py")
    p = torchrun("29541", script, "--save", str(tmp_path / "plain"))
    assert p.returncode == 0, p.stderr
    folder = tmp_path / "records"
    t = torchrun(
        "29542",
        "--no-python",
        str(OPTDBG),
        "trace",
        "--json-dir",
        str(folder),
        "--strict",
        script,
        "--save",
        str(tmp_path / "traced"),
    )
    assert t.returncode == 0, t.stderr
    # the two processes share one stdout: their prints may interleave mid-line
    printed = re.compile(r"rank \d step \d loss [\d.]+")
    assert sorted(printed.findall(t.stdout)) == sorted(printed.findall(p.stdout))
    assert len(printed.findall(p.stdout)) == 6
    lines = markers("ddp.py")
    for rank in (0, 1):
        plain_state = torch.load(tmp_path / f"plain.rank{rank}")
        traced_state = torch.load(tmp_path / f"traced.rank{rank}")
        assert same(plain_state, traced_state)
        records = [json.loads(x) for x in (folder / f"rank{rank}.jsonl").read_text().splitlines()]
        assert [r["op"] for r in records] == ["zero_grad", "backward", "step"] * 3
        assert {r["rank"] for r in records} == {rank}
        assert all(int(r["where"].split(":")[1]) in lines[r["op"]] for r in records)
        last = records[-1]["params"]
        for name, value in traced_state.items():
            assert last[f"model.module.{name}"] == value.tolist()


def test_ddp_detectors_flag_rank_1s_changed_grads_and_skipped_step(tmp_path: Path) -> None:
    """Rank 1 doubles its gradients after the all-reduce at iteration 1 and skips its step at
    iteration 2: ddp-grads-differ on both ranks' step of iteration 1, ddp-step-skipped on rank
    0's step of iteration 2 and on rank 1's backward it left unstepped; values bit for bit
    those of the plain run (the ranks compare through the store, not by collectives)."""
    script = str(SCRIPTS / "ddp_bugs.py")
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    p = _run([*launcher, "--master-port", "29543", script, "--bug", "both", "--save",
              str(tmp_path / "plain")], timeout=300)  # fmt: skip
    assert p.returncode == 0, p.stderr
    folder = tmp_path / "records"
    t = _run([*launcher, "--master-port", "29544", "--no-python", str(OPTDBG), "trace",
              "--json-dir", str(folder), script, "--bug", "both", "--save",
              str(tmp_path / "traced")], timeout=300)  # fmt: skip
    assert t.returncode == 0, t.stderr
    warned = {}
    for rank in (0, 1):
        assert same(
            torch.load(tmp_path / f"plain.rank{rank}"), torch.load(tmp_path / f"traced.rank{rank}")
        )
        records = [json.loads(x) for x in (folder / f"rank{rank}.jsonl").read_text().splitlines()]
        assert [r["index"] for r in records] == list(range(len(records)))
        warned[rank] = {
            r["index"]: (r["op"], r["where"], [w["code"] for w in r["warnings"]])
            for r in records
            if r["warnings"]
        }
    step, backward = "ddp_bugs.py:35", "ddp_bugs.py:29"
    assert warned[0] == {
        5: ("step", step, ["ddp-grads-differ"]),
        8: ("step", step, ["ddp-step-skipped"]),
    }
    assert warned[1] == {
        5: ("step", step, ["ddp-grads-differ"]),
        7: ("backward", backward, ["ddp-step-skipped"]),
    }
    rank0 = [json.loads(x) for x in (folder / "rank0.jsonl").read_text().splitlines()]
    message = rank0[5]["warnings"][0]["message"]
    assert "model.module.0.weight: norm" in message and "on rank 1" in message
    assert "rank 1 did not call optimizer.step()" in rank0[8]["warnings"][0]["message"]
