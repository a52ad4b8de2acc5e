"""``when``/``if:`` as an Argo ``depends`` expression over task results.

worldtree decides a node's fate from its upstream (``success()``: every dependency ended OK;
``failure()``: something before it failed; ``always()``; ``cancelled()``) and from ``env``.
Argo's ``depends`` sees the results of named tasks (``a.Succeeded``, ``a.Failed``, ``a.Errored``,
``a.Skipped``, ``a.Omitted``, ``a.Daemoned``), so:

* ``success()`` — every dependency ended OK: ``Succeeded``, ``Skipped`` or ``Daemoned``; also
  ``Omitted`` for a dependency that has its own condition (a false condition is OK upstream),
  and ``Failed`` for one with ``allow_failure``;
* ``failure()`` — some ancestor that may not fail ``Failed`` or ``Errored`` (Argo names the tasks an
  expression sees, so a failure on a parallel branch is not seen, where the engine sees any);
* ``always()`` — true; the task still waits for every dependency to finish;
* ``cancelled()`` — false: a stopped Workflow (``spec.shutdown: Stop``) schedules no new tasks;
* ``env.NAME`` — the task's environment is fixed at export, so comparisons on it are decided
  now, by the engine's own evaluator; a secret is unknown here and is refused.

Without a status function an ``if:`` is ANDed with ``success()``, as the engine does. The result
is ``None`` (plain ``dependencies`` say it all), ``False`` (never runs) or an expression.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from worldtree.engine.conditions import Status, evaluate
from worldtree.errors import UsageError
from worldtree.model import conditions as grammar
from worldtree.model.graph import Node

__all__ = ["Condition", "DepInfo", "task_condition"]

Condition = str | bool


@dataclass(frozen=True)
class DepInfo:
    """What a dependent needs to know about a task."""

    name: str
    allow_failure: bool
    conditional: bool


def _and(items: Iterable[Condition]) -> Condition:
    parts: list[str] = []
    for item in items:
        if item is False:
            return False
        if item is not True:
            parts.append(str(item))
    if not parts:
        return True
    return parts[0] if len(parts) == 1 else "(" + " && ".join(parts) + ")"


def _or(items: Iterable[Condition]) -> Condition:
    parts: list[str] = []
    for item in items:
        if item is True:
            return True
        if item is not False:
            parts.append(str(item))
    if not parts:
        return False
    return parts[0] if len(parts) == 1 else "(" + " || ".join(parts) + ")"


def _not(item: Condition) -> Condition:
    return (not item) if isinstance(item, bool) else f"!{item}"


def ok(dep: DepInfo) -> Condition:
    results = ["Succeeded", "Skipped", "Daemoned"]
    if dep.conditional:
        results.append("Omitted")
    if dep.allow_failure:
        results.append("Failed")
    return _or(f"{dep.name}.{r}" for r in results)


def done(dep: DepInfo) -> Condition:
    return _or(f"{dep.name}.{r}" for r in ("Succeeded", "Failed", "Errored", "Skipped", "Omitted", "Daemoned"))


def task_condition(node: Node, deps: list[DepInfo], ancestors: list[DepInfo],
                   env: dict[str, str]) -> Condition | None:
    """The ``depends`` of the task running ``node`` (its only node when it has a condition).

    As in the engine, an ``if:`` replaces ``when``, a ``post`` hook always runs, and ``env`` is the
    pipeline's variables under the node's own.
    """
    plain = node.when == "on_success" and node.condition is None and node.kind != "post"
    if plain and all(not d.allow_failure and not d.conditional for d in deps):
        return None

    def success() -> Condition:
        return _and(ok(d) for d in deps)

    def failure() -> Condition:
        return _or(_or((f"{a.name}.Failed", f"{a.name}.Errored")) for a in ancestors if not a.allow_failure)

    def walk(expr: grammar.Expr) -> Condition:
        if isinstance(expr, grammar.StatusCall):
            return {"success": success, "failure": failure, "always": lambda: True,
                    "cancelled": lambda: False}[expr.function]()
        if isinstance(expr, grammar.Not):
            return _not(walk(expr.operand))
        if isinstance(expr, grammar.BoolOp):
            parts = [walk(e) for e in expr.operands]
            return _and(parts) if expr.op == "and" else _or(parts)
        if grammar.uses_status(expr):
            raise UsageError(f"job {node.job}: condition {node.condition!r} compares a status function; "
                             "argo export can combine success()/failure()/always() only with and/or/not")
        _refuse_secrets(expr)
        return evaluate(expr, env, Status(upstream_ok=True, failed=False, cancelled=False))

    def _refuse_secrets(expr: grammar.Expr) -> None:
        if isinstance(expr, grammar.Env) and expr.name in node.secrets:
            raise UsageError(f"job {node.job}: condition {node.condition!r} reads secret {expr.name}, which is only "
                             "known inside the pod; argo export decides env conditions from the file")
        if isinstance(expr, grammar.Not):
            _refuse_secrets(expr.operand)
        elif isinstance(expr, grammar.BoolOp):
            for e in expr.operands:
                _refuse_secrets(e)
        elif isinstance(expr, grammar.Compare):
            _refuse_secrets(expr.left)
            _refuse_secrets(expr.right)

    result: Condition
    if node.condition is not None:
        tree = grammar.parse(node.condition)
        result = walk(tree) if grammar.uses_status(tree) else _and((walk(tree), success()))
    elif node.kind == "post" or node.when == "always":
        result = True
    else:
        result = success() if node.when == "on_success" else failure()
    if result is False:
        return False
    # Reference every dependency, so the task waits for all of them whatever the expression says.
    return _and([*(done(d) for d in deps), result])
