"""Loading scenarios: every broken file gets one clear ScenarioError naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from optdbg.engine import ScenarioError, builtin_names, load

HEADER = "import torch\n"
GOOD_T = "t = torch.tensor([1.0, 2.0], requires_grad=True)\n"
GOOD_OPT = "optimizer = torch.optim.SGD([t], lr=0.1)\n"
GOOD_FWD = "def forward():\n    return (t ** 2).sum()\n"


def broken(tmp_path: Path, text: str | bytes, name: str = "broken.py") -> ScenarioError:
    """Load `text` from a file and return the ScenarioError it must raise."""
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load(path)
    return info.value


def check(
    error: ScenarioError, path: Path, line: int | None, *words: str, fix: str | None = None
) -> str:
    """The message names the file and the line, says what was expected and how to fix it."""
    text = str(error)
    assert error.file == str(path)
    assert error.line == line, text
    where = f"{path}:{line}" if line else str(path)
    assert text.startswith(f"{where}: "), text
    assert "\n  expected: " in text and "\n  fix: " in text
    assert error.expected.strip() and error.fix.strip()
    for word in words:
        assert word in text, f"{word!r} not in:\n{text}"
    if fix is not None:
        assert fix in error.fix, error.fix
    assert "Traceback" not in text and "optdbg/engine" not in text
    return text


# ----------------------------------------------------------------- broken files


def test_syntax_error(tmp_path: Path) -> None:
    text = HEADER + GOOD_T + "optimizer = torch.optim.SGD([t], lr=0.1\n" + GOOD_FWD
    e = broken(tmp_path, text)
    # Python reports the unclosed parenthesis at the line that opens it
    msg = check(e, tmp_path / "broken.py", 3, "syntax error")
    assert "optimizer = torch.optim.SGD([t], lr=0.1" in msg  # the source line is quoted


def test_syntax_error_later_in_the_file(tmp_path: Path) -> None:
    text = HEADER + GOOD_T + GOOD_OPT + "\n\ndef forward()\n    return t.sum()\n"
    check(broken(tmp_path, text), tmp_path / "broken.py", 6, "syntax error")


def test_exception_while_loading(tmp_path: Path) -> None:
    text = HEADER + GOOD_T + "scale = 1 / 0\n" + GOOD_OPT + GOOD_FWD
    e = broken(tmp_path, text)
    msg = check(e, tmp_path / "broken.py", 3, "ZeroDivisionError", "scale = 1 / 0")
    assert "division by zero" in msg


def test_exception_inside_a_library_call_names_the_scenario_line(tmp_path: Path) -> None:
    text = HEADER + "import json\n" + GOOD_T + "\nconfig = json.loads('{broken')\n" + GOOD_OPT
    e = broken(tmp_path, text)
    check(e, tmp_path / "broken.py", 5, "JSONDecodeError", "json.loads")


def test_exception_inside_a_torch_call_names_the_scenario_line(tmp_path: Path) -> None:
    text = HEADER + GOOD_T + "w = torch.zeros(2, 3) @ torch.zeros(2, 3)\n" + GOOD_OPT
    e = broken(tmp_path, text)
    check(e, tmp_path / "broken.py", 3, "RuntimeError")


def test_exception_inside_a_helper_function(tmp_path: Path) -> None:
    text = (
        HEADER
        + "\n"
        + "def make_weights(n):\n"  # 3
        + "    if n < 0:\n"  # 4
        + "        raise ValueError('n must be positive')\n"  # 5
        + "    return torch.zeros(n, requires_grad=True)\n"  # 6
        + "\n"
        + "t = make_weights(-1)\n"  # 8
        + GOOD_OPT
        + GOOD_FWD
    )
    e = broken(tmp_path, text)
    # the deepest line of the scenario's own code: the raise inside the helper
    check(e, tmp_path / "broken.py", 5, "ValueError", "n must be positive")


def test_exception_in_a_helper_module_names_the_scenario_line(tmp_path: Path) -> None:
    (tmp_path / "helpers_mod.py").write_text(
        "def make():\n    raise LookupError('no such weights')\n", encoding="utf-8"
    )
    text = (
        HEADER
        + "import sys\n"
        + f"sys.path.insert(0, {str(tmp_path)!r})\n"
        + "import helpers_mod\n"
        + "\n"
        + "t = helpers_mod.make()\n"  # 6
        + GOOD_OPT
    )
    try:
        e = broken(tmp_path, text)
    finally:
        import sys

        sys.modules.pop("helpers_mod", None)
        while str(tmp_path) in sys.path:
            sys.path.remove(str(tmp_path))
    check(e, tmp_path / "broken.py", 6, "LookupError", "no such weights")


def test_no_optimizer(tmp_path: Path) -> None:
    text = HEADER + GOOD_T + "\n" + GOOD_FWD + "\n"
    e = broken(tmp_path, text)
    # nothing is at fault on any one line: the message names the file, not its last line
    check(e, tmp_path / "broken.py", None, "no `optimizer`", fix="optimizer = torch.optim.SGD")


def test_an_optimizer_under_another_name_is_pointed_at(tmp_path: Path) -> None:
    text = HEADER + GOOD_T + "opt = torch.optim.SGD([t], lr=0.1)\n" + GOOD_FWD
    e = broken(tmp_path, text)
    check(e, tmp_path / "broken.py", 3, "`opt` is a SGD", fix="rename it")


def test_optimizer_is_a_string(tmp_path: Path) -> None:
    text = HEADER + GOOD_T + "optimizer = 'sgd'\n" + GOOD_FWD
    e = broken(tmp_path, text)
    check(e, tmp_path / "broken.py", 3, "`optimizer` is a str", "torch.optim.Optimizer")


def test_optimizer_is_the_class_itself(tmp_path: Path) -> None:
    text = HEADER + GOOD_T + "\noptimizer = torch.optim.SGD\n" + GOOD_FWD
    e = broken(tmp_path, text)
    check(e, tmp_path / "broken.py", 4, "not a torch.optim.Optimizer", fix="instantiate")


def test_optimizer_given_a_tensor_instead_of_a_list(tmp_path: Path) -> None:
    text = HEADER + GOOD_T + "optimizer = torch.optim.SGD(t, lr=0.1)\n" + GOOD_FWD
    e = broken(tmp_path, text)
    check(e, tmp_path / "broken.py", 3, "TypeError", fix="list")
    assert "[t]" in e.fix


def test_empty_parameter_list(tmp_path: Path) -> None:
    text = HEADER + GOOD_T + "optimizer = torch.optim.SGD([], lr=0.1)\n" + GOOD_FWD
    e = broken(tmp_path, text)
    check(e, tmp_path / "broken.py", 3, "empty parameter list", fix="requires_grad=True")


def test_non_leaf_tensor(tmp_path: Path) -> None:
    text = (
        HEADER
        + "w = torch.randn(3, requires_grad=True) * 0.1\n"
        + "optimizer = torch.optim.SGD([w], lr=0.1)\n"
        + "def forward():\n    return w.sum()\n"
    )
    e = broken(tmp_path, text)
    check(e, tmp_path / "broken.py", 3, "non-leaf", fix="leaf")


def test_neither_form_of_forward(tmp_path: Path) -> None:
    text = HEADER + GOOD_T + GOOD_OPT + "\n# no forward here\n"
    e = broken(tmp_path, text)
    msg = check(e, tmp_path / "broken.py", None, "no `forward`")
    assert "model" in msg and "loss_fn" in msg and "data" in msg


def test_supervised_form_missing_data(tmp_path: Path) -> None:
    text = (
        HEADER
        + "model = torch.nn.Linear(2, 1)\n"
        + "loss_fn = torch.nn.MSELoss()\n"
        + "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    )
    e = broken(tmp_path, text)
    check(e, tmp_path / "broken.py", 3, "`data` missing", fix="data")


def test_supervised_form_missing_loss_fn(tmp_path: Path) -> None:
    text = (
        HEADER
        + "model = torch.nn.Linear(2, 1)\n"
        + "data = [(torch.zeros(4, 2), torch.zeros(4, 1))]\n"
        + "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    )
    e = broken(tmp_path, text)
    check(e, tmp_path / "broken.py", 3, "`loss_fn` missing", fix="loss_fn")


def test_forward_with_a_batch_but_no_data(tmp_path: Path) -> None:
    text = HEADER + GOOD_T + GOOD_OPT + "\ndef forward(batch):\n    return (t * batch).sum()\n"
    e = broken(tmp_path, text)
    check(e, tmp_path / "broken.py", 5, "no `data`", fix="data")


def test_empty_file(tmp_path: Path) -> None:
    check(broken(tmp_path, ""), tmp_path / "broken.py", 1, "empty")


def test_whitespace_only_file(tmp_path: Path) -> None:
    check(broken(tmp_path, "\n   \n\t\n\n"), tmp_path / "broken.py", 1, "empty")


def test_non_utf8_file(tmp_path: Path) -> None:
    text = (HEADER + GOOD_T + "# caf\xe9 in latin-1\n" + GOOD_OPT).encode("latin-1")
    e = broken(tmp_path, text)
    check(e, tmp_path / "broken.py", 3, "UTF-8", "0xe9", fix="UTF-8")


def test_binary_file(tmp_path: Path) -> None:
    e = broken(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00", name="image.py")
    check(e, tmp_path / "image.py", 1, "UTF-8")


def test_missing_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.py"
    with pytest.raises(ScenarioError) as info:
        load(path)
    msg = check(info.value, path, None, "no such file")
    for name in builtin_names():
        assert name in msg


def test_unknown_builtin_name() -> None:
    with pytest.raises(ScenarioError) as info:
        load("no_such_builtin")
    msg = str(info.value)
    assert msg.startswith("no_such_builtin: no such file")
    assert "quadratic_bowl" in msg and "--list" in msg


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "scenarios.py"
    folder.mkdir()
    with pytest.raises(ScenarioError) as info:
        load(folder)
    check(info.value, folder, None, "directory")


def test_sys_exit_at_load(tmp_path: Path) -> None:
    text = HEADER + "import sys\n" + GOOD_T + "sys.exit(3)\n" + GOOD_OPT + GOOD_FWD
    e = broken(tmp_path, text)
    check(e, tmp_path / "broken.py", 4, "sys.exit(3)", fix="remove the exit")


def test_bare_exit_inside_a_function(tmp_path: Path) -> None:
    text = HEADER + "import sys\n\ndef stop():\n    sys.exit()\n\nstop()\n" + GOOD_T
    e = broken(tmp_path, text)
    check(e, tmp_path / "broken.py", 5, "sys.exit(None)")


def test_input_at_load(tmp_path: Path) -> None:
    text = HEADER + GOOD_T + "lr = float(input('lr? '))\n" + GOOD_OPT + GOOD_FWD
    e = broken(tmp_path, text)
    check(e, tmp_path / "broken.py", 3, "input()")


def test_forward_is_not_callable(tmp_path: Path) -> None:
    text = HEADER + GOOD_T + GOOD_OPT + "forward = (t ** 2).sum()\n"
    e = broken(tmp_path, text)
    check(e, tmp_path / "broken.py", 4, "`forward` is a Tensor", fix="function")


def test_data_that_cannot_be_iterated(tmp_path: Path) -> None:
    text = HEADER + GOOD_T + GOOD_OPT + "data = 5\n" + "def forward(batch):\n    return t.sum()\n"
    e = broken(tmp_path, text)
    check(e, tmp_path / "broken.py", 4, "`data` is a int")


# ----------------------------------------------------------------- good files


def test_builtin_title_description_and_names() -> None:
    bowl = load("quadratic_bowl")
    assert bowl.name == "quadratic_bowl"
    assert bowl.title == "Quadratic bowl: SGD from (10, 10), lr 0.1"
    assert bowl.description.startswith("Minimize (t0 - 3)^2 + (t1 + 2)^2 + 8")
    assert "\n" in bowl.description and not bowl.description.endswith("\n")
    assert [n for n, _ in bowl.params] == ["t"]
    assert bowl.params[0][1] is bowl.namespace["t"]
    assert bowl.data is None and bowl.scheduler is None

    mlp = load("mlp_sequential")
    assert [n for n, _ in mlp.params] == [
        "model.0.weight",
        "model.0.bias",
        "model.2.weight",
        "model.2.bias",
    ]
    assert mlp.params[0][1] is mlp.namespace["model"][0].weight

    poly = load("polynomial_sin")
    assert [n for n, _ in poly.params] == ["a", "b", "c", "d"]


def test_title_and_description_of_a_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.py"
    path.write_text(
        '"""My title\n\n    First line of the description.\n    Second line.\n"""\n'
        + HEADER
        + GOOD_T
        + GOOD_OPT
        + GOOD_FWD,
        encoding="utf-8",
    )
    s = load(path)
    assert s.title == "My title"
    assert s.description == "First line of the description.\nSecond line."
    assert s.name == "mine" and s.path == path
    assert s.forward_line == 9  # the `def forward` line


def test_no_docstring_uses_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "plain_one.py"
    path.write_text(HEADER + GOOD_T + GOOD_OPT + GOOD_FWD, encoding="utf-8")
    s = load(path)
    assert s.title == "plain_one" and s.description == ""


def test_unnamed_parameters_get_group_names(tmp_path: Path) -> None:
    path = tmp_path / "anon.py"
    path.write_text(
        HEADER
        + "optimizer = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)\n"
        + "def forward():\n    return optimizer.param_groups[0]['params'][0].sum()\n",
        encoding="utf-8",
    )
    assert [n for n, _ in load(path).params] == ["group0.param0"]


@pytest.mark.parametrize("name", ["mlp_sequential", "polynomial_sin", "classifier_adam"])
def test_loading_twice_gives_identical_tensors(name: str) -> None:
    first = load(name)
    torch.randn(100)  # whatever happened to the global RNG in between
    second = load(name)
    assert [n for n, _ in first.params] == [n for n, _ in second.params]
    for (_, a), (_, b) in zip(first.params, second.params, strict=True):
        assert a is not b and torch.equal(a, b)
