"""``if:`` expressions on jobs and steps, evaluated safely (no ``eval`` of user text).

Grammar (a subset of Python and GitHub Actions expressions)::

    success()  failure()  always()  cancelled()      status functions
    env.NAME   env['NAME']                            the node's environment
    'text'  "text"  123  true  false  null            literals
    ==  !=  <  <=  >  >=  in  not in   and  or  not  ( )

A ``${{ ... }}`` wrapper is accepted and ignored. Without a status function the expression is
ANDed with ``success()``, as GitHub Actions does.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

_WRAPPER = re.compile(r"^\s*\$\{\{(.*)\}\}\s*$", re.S)
_STATUS_FUNCS = {"success", "failure", "always", "cancelled"}
_STRING = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")


class ConditionError(ValueError):
    pass


@dataclass(frozen=True)
class Status:
    upstream_ok: bool
    failed: bool
    cancelled: bool


def uses_status(expression: str) -> bool:
    return any(f"{name}(" in expression for name in _STATUS_FUNCS)


def parse_condition(expression: str) -> ast.Expression:
    """Parse and check; raises ConditionError with a message a user can act on."""
    match = _WRAPPER.match(expression)
    text = match.group(1) if match else expression
    # Rewrite the GitHub-style spellings outside string literals only: 'true' stays 'true'.
    parts = _STRING.split(text)
    for i in range(0, len(parts), 2):
        part = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", re.sub(r"\bnull\b", "None", parts[i])))
        part = part.replace("&&", " and ").replace("||", " or ")
        parts[i] = re.sub(r"!(?!=)", " not ", part)
    text = "".join(parts)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConditionError(f"cannot parse condition {expression!r}: {exc.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise ConditionError(f"condition {expression!r} uses {type(node).__name__}, which is not allowed; "
                                 "use comparisons, and/or/not, env.NAME and success()/failure()/always()")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _STATUS_FUNCS
                                              and not node.args):
            raise ConditionError(f"condition {expression!r}: only success(), failure(), always(), cancelled() "
                                 "can be called")
        if isinstance(node, ast.Name) and node.id not in (*_STATUS_FUNCS, "env", "True", "False", "None"):
            raise ConditionError(f"condition {expression!r}: unknown name {node.id!r}; use env.{node.id}")
    return tree


_ALLOWED = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.Compare, ast.Eq, ast.NotEq,
            ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Constant, ast.Name, ast.Load, ast.Call,
            ast.Attribute, ast.Subscript)


def evaluate(expression: str, env: dict[str, str], status: Status) -> bool:
    tree = parse_condition(expression)
    result = bool(_eval(tree.body, env, status))
    if not uses_status(expression):
        result = result and status.upstream_ok and not status.cancelled
    return result


def _eval(node: ast.AST, env: dict[str, str], status: Status) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.BoolOp):
        values = (_eval(v, env, status) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp):
        return not _eval(node.operand, env, status)
    if isinstance(node, ast.Call):
        name = node.func.id  # type: ignore[attr-defined]
        return {"success": status.upstream_ok and not status.cancelled, "failure": status.failed,
                "always": True, "cancelled": status.cancelled}[name]
    if isinstance(node, ast.Attribute):
        return env.get(node.attr, "")
    if isinstance(node, ast.Subscript):
        key = _eval(node.slice, env, status)
        return env.get(str(key), "")
    if isinstance(node, ast.Name):
        return {"True": True, "False": False, "None": None}.get(node.id, env)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, env, status)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, env, status)
            if not _compare(op, left, right):
                return False
            left = right
        return True
    raise ConditionError(f"unsupported expression {ast.dump(node)}")  # pragma: no cover


def _compare(op: ast.cmpop, left: Any, right: Any) -> bool:
    if isinstance(op, ast.In | ast.NotIn):
        found = str(left) in right if isinstance(right, str) else left in right
        return found if isinstance(op, ast.In) else not found
    if isinstance(left, str) and isinstance(right, int | float):
        try:
            left = float(left)
        except ValueError:
            return False
    ops = {ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b, ast.Lt: lambda a, b: a < b,
           ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b}
    try:
        return bool(ops[type(op)](left, right))
    except TypeError:
        return False
