"""Evaluating ``if:`` conditions. The grammar and its parser live in :mod:`worldtree.model.conditions`;
the engine only walks the parsed tree (no ``eval`` of user text).

Without a status function an expression is ANDed with ``success()``, as GitHub Actions does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from worldtree.model import conditions as grammar
from worldtree.model.conditions import BoolOp, ConditionError, Env, Expr, Literal, Not, StatusCall

__all__ = ["ConditionError", "Status", "evaluate", "uses_status"]


@dataclass(frozen=True)
class Status:
    """What the status functions see. ``cancelled`` is true while the run is being cancelled."""

    upstream_ok: bool
    failed: bool
    cancelled: bool


def _tree(expr: Expr | str) -> Expr:
    return grammar.parse(expr) if isinstance(expr, str) else expr


def uses_status(expr: Expr | str) -> bool:
    """Whether the condition calls success()/failure()/always()/cancelled()."""
    return grammar.uses_status(_tree(expr))


def evaluate(expr: Expr | str, env: dict[str, str], status: Status) -> bool:
    """Raises ConditionError for text that does not parse (the loader rejects such files first)."""
    tree = _tree(expr)
    result = bool(_eval(tree, env, status))
    if not grammar.uses_status(tree):
        result = result and status.upstream_ok and not status.cancelled
    return result


def _eval(node: Expr, env: dict[str, str], status: Status) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Env):
        return env if node.name is None else env.get(node.name, "")
    if isinstance(node, StatusCall):
        return {"success": status.upstream_ok and not status.cancelled, "failure": status.failed,
                "always": True, "cancelled": status.cancelled}[node.function]
    if isinstance(node, Not):
        return not _eval(node.operand, env, status)
    if isinstance(node, BoolOp):
        values = (_eval(v, env, status) for v in node.operands)
        return all(values) if node.op == "and" else any(values)
    return _compare(node.op, _eval(node.left, env, status), _eval(node.right, env, status))


def _compare(op: str, left: Any, right: Any) -> bool:
    if op in ("in", "not in"):
        try:
            found = str(left) in right if isinstance(right, str) else left in right
        except TypeError:
            found = False
        return found if op == "in" else not found
    # env values are strings: `env.N > 2` compares numbers when the value is one
    if isinstance(left, str) and isinstance(right, int | float) and not isinstance(right, bool):
        try:
            left = float(left)
        except ValueError:
            return op == "!="
    ops = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
           "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
    try:
        return bool(ops[op](left, right))
    except TypeError:
        return False

