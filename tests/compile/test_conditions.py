"""The ``if:`` grammar: parsed to a plain tree in the model, evaluated only by the engine."""

from __future__ import annotations

import pytest

from worldtree.engine.conditions import Status, evaluate, uses_status
from worldtree.model.conditions import BoolOp, Compare, ConditionError, Env, Literal, Not, StatusCall, parse

_OK = Status(upstream_ok=True, failed=False, cancelled=False)
_FAILED = Status(upstream_ok=False, failed=True, cancelled=False)
_CANCELLING = Status(upstream_ok=True, failed=False, cancelled=True)


def test_parse_gives_a_plain_tree() -> None:
    assert parse("${{ env.A == 'x' && !failure() || env['B'] not in 'abc' }}") == BoolOp("or", (
        BoolOp("and", (Compare("==", Env("A"), Literal("x")), Not(StatusCall("failure")))),
        Compare("not in", Env("B"), Literal("abc"))))
    assert parse("true and null == None and 1.5 > 1") == BoolOp("and", (
        Literal(True), Compare("==", Literal(None), Literal(None)), Compare(">", Literal(1.5), Literal(1))))


@pytest.mark.parametrize(("text", "column", "fragment"), [
    ("env.X ==", 9, "expected a value, found the end"),
    ("env.X = 1", 7, "unexpected character '='"),
    ("__import__('os')", 1, "__import__() cannot be called"),
    ("branch == 'main'", 1, "unknown name 'branch' (did you mean env.branch?)"),
    ("env.A < 1 < 2", 11, "comparisons do not chain"),
    ("(env.A == 'x'", 14, "expected ')', found the end"),
    ("${{ env.A == }}", 14, "expected a value"),
    ("success(1)", 9, "expected ')'"),
    ("", 1, "empty expression"),
    ("(" * 3000 + "1" + ")" * 3000, 51, "nested deeper than 50 levels"),
    ("!" * 5000 + "true", 51, "nested deeper than 50 levels"),
    ("9" * 5000 + " == 1", 1, "unexpected character '9'"),
])
def test_errors_carry_the_column(text: str, column: int, fragment: str) -> None:
    with pytest.raises(ConditionError) as info:
        parse(text)
    assert info.value.column == column
    assert fragment in str(info.value)


@pytest.mark.parametrize(("text", "env", "status", "expected"), [
    ("env.N > 2", {"N": "10"}, _OK, True),
    ("env.N > 2", {"N": "ten"}, _OK, False),
    ("'X' in env", {"X": ""}, _OK, True),
    ("env.A == 'x'", {"A": "x"}, _FAILED, False),  # no status function: ANDed with success()
    ("env.A == 'x'", {"A": "x"}, _CANCELLING, False),
    ("failure()", {}, _FAILED, True),
    ("always()", {}, _CANCELLING, True),
    ("cancelled()", {}, _CANCELLING, True),
    ("cancelled()", {}, _OK, False),
    ("success()", {}, _CANCELLING, False),
])
def test_evaluate(text: str, env: dict[str, str], status: Status, expected: bool) -> None:
    assert evaluate(text, env, status) is expected
    assert evaluate(parse(text), env, status) is expected


def test_uses_status_takes_text_or_tree() -> None:
    assert uses_status("env.A == 'x' or always()") and uses_status(parse("!cancelled()"))
    assert not uses_status("env.A == 'success()'")
