"""The one formatter of values (engine.fmt) and the one parser of typed values
(engine.hyper.parse_value), which the CLI, the op summaries, the DOT export and the TUI share."""

from __future__ import annotations

import math

import pytest
import torch

from optdbg.engine import fmt
from optdbg.engine.hyper import HyperError, parse_value
from optdbg.engine.snapshot import view


def test_tensor_small_big_and_summarized() -> None:
    assert fmt.tensor(view(torch.tensor([1.0, 2.5]))) == "[1, 2.5]"
    assert fmt.tensor(view(torch.arange(10.0)), limit=3) == "(10) [0, 1, 2, …]"
    big = fmt.tensor(view(torch.ones(100)))
    assert big == "(100) mean 1 std 0 ‖·‖ 10"
    assert fmt.tensor(view(torch.ones(100)), ascii=True, with_shape=False) == "mean 1 std 0 norm 10"
    assert fmt.tensor(None) == "None" and fmt.tensor(0.125) == "0.125"


def test_tensor_of_complex_numbers_does_not_fail() -> None:
    assert fmt.tensor(view(torch.ones(10, dtype=torch.complex64)), limit=2) == (
        "(10) [(1+0j), (1+0j), …]"
    )


def test_cell_is_narrow() -> None:
    assert fmt.cell(view(torch.tensor([1.0, 2.0, 3.0, 4.0]))) == "[1, 2, 3, 4]"
    assert fmt.cell(view(torch.arange(5.0))) == "[0, 1, 2, …]"
    assert fmt.cell(view(torch.ones(100))) == "μ 1 σ 0"


def test_brief_of_a_big_tensor_is_its_shape_and_norm() -> None:
    assert fmt.brief(torch.full((10, 10), 2.0)) == "(10, 10) ‖·‖ 20"
    assert fmt.brief(torch.tensor([3.0])) == "[3]"
    assert fmt.brief(None) == "None"


def test_value_and_its_editable_text() -> None:
    assert fmt.value((0.9, 0.999)) == "(0.9, 0.999)"
    assert fmt.editable((0.9, 0.999)) == "0.9, 0.999"
    assert fmt.value(torch.tensor(0.01)) == "0.01"
    assert fmt.value(True) == "True" and fmt.value(None) == "None" and fmt.value("x") == "'x'"


@pytest.mark.parametrize(
    ("text", "like", "expected"),
    [
        ("0.05", 0.1, 0.05),
        ("1", 0.1, 1.0),
        ("4.0", 3, 4),
        ("3.5", 3, 3.5),
        ("0.8, 0.99", (0.9, 0.999), (0.8, 0.99)),
        ("0.8 0.99", (0.9, 0.999), (0.8, 0.99)),
        ("[1, 0]", (0.9, 0.999), (1.0, 0.0)),
        ("yes", False, True),
        ("Off", True, False),
    ],
)
def test_parse_value_reads_a_value_of_the_current_kind(
    text: str, like: object, expected: object
) -> None:
    value = parse_value(text, like)
    assert value == expected and type(value) is type(expected)


def test_parse_value_round_trips_what_the_dialog_shows() -> None:
    for like in (0.1, 3, (0.9, 0.999), True, 1e-8):
        assert parse_value(fmt.editable(like), like) == like
    assert math.isnan(parse_value("nan", 0.1))  # read; `validate` refuses it, saying why


@pytest.mark.parametrize(
    ("text", "like", "message"),
    [
        ("fast", 0.1, "cannot read 'fast' as a number"),
        ("maybe", True, "expected true or false"),
        ("a, b", (0.9, 0.999), "as numbers"),
        ("fast", None, "cannot read 'fast' as a value"),
        ("{[1]: 2}", None, "cannot read"),
    ],
)
def test_parse_value_refuses_what_it_cannot_read(text: str, like: object, message: str) -> None:
    with pytest.raises(HyperError, match=message):
        parse_value(text) if like is None else parse_value(text, like)
