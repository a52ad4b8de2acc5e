"""The ``if:`` grammar, parsed into a plain tree: the compiler checks it, the engine evaluates it,
and an Argo ``when`` translation can walk it. Nothing here evaluates anything.

Grammar (a subset of GitHub Actions expressions)::

    expr    := or
    or      := and (('or' | '||') and)*
    and     := not (('and' | '&&') not)*
    not     := ('not' | '!') not | compare
    compare := primary (('==' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | 'not in') primary)?
    primary := 'text' | "text" | 123 | 1.5 | true | false | null
             | env.NAME | env['NAME'] | env
             | success() | failure() | always() | cancelled()
             | '(' expr ')'

A ``${{ ... }}`` wrapper is accepted and ignored. Comparisons do not chain (``a < b < c``):
write ``a < b and b < c``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal as TypingLiteral

STATUS_FUNCTIONS = ("success", "failure", "always", "cancelled")
CompareOp = TypingLiteral["==", "!=", "<", "<=", ">", ">=", "in", "not in"]


class ConditionError(ValueError):
    """A condition that does not parse; ``column`` counts from 1 in the text the user wrote."""

    def __init__(self, message: str, column: int = 1) -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True, slots=True)
class Literal:
    value: str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Env:
    """``env.NAME`` / ``env['NAME']``; ``name=None`` is the whole map (``'X' in env``)."""

    name: str | None


@dataclass(frozen=True, slots=True)
class StatusCall:
    function: str


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: TypingLiteral["and", "or"]
    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Compare:
    op: CompareOp
    left: Expr
    right: Expr


Expr = Literal | Env | StatusCall | Not | BoolOp | Compare

_WRAPPER = re.compile(r"^(\s*\$\{\{)(.*)\}\}\s*$", re.S)
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<number>\d{1,30}(?:\.\d{1,30})?(?![\d.]))
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|&&|\|\||[<>!().\[\]])
""", re.X)
#: Parentheses and ``not`` nest at most this deep (the parser recurses on them).
MAX_NESTING = 50
_KEYWORDS = {"true": True, "True": True, "false": False, "False": False, "null": None, "None": None}
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}


def parse(text: str) -> Expr:
    """Parse one condition; raises ConditionError with a message a user can act on."""
    match = _WRAPPER.match(text)
    body, offset = (match.group(2), len(match.group(1))) if match else (text, 0)
    return _Parser(text, body, offset).parse()


def uses_status(expr: Expr) -> bool:
    """Whether the expression calls a status function (otherwise it is ANDed with ``success()``)."""
    if isinstance(expr, StatusCall):
        return True
    if isinstance(expr, Not):
        return uses_status(expr.operand)
    if isinstance(expr, BoolOp):
        return any(uses_status(e) for e in expr.operands)
    if isinstance(expr, Compare):
        return uses_status(expr.left) or uses_status(expr.right)
    return False


class _Parser:
    def __init__(self, original: str, body: str, offset: int) -> None:
        self.original = original
        self.tokens: list[tuple[str, str, int]] = []  # (kind, text, column from 1)
        pos = 0
        while pos < len(body):
            m = _TOKEN.match(body, pos)
            if m is None:
                raise self._error(f"unexpected character {body[pos]!r}", offset + pos + 1)
            if m.lastgroup != "space":
                self.tokens.append((m.lastgroup or "", m.group(), offset + pos + 1))
            pos = m.end()
        self.end_column = offset + len(body) + 1
        self.i = 0
        self.depth = 0

    def _error(self, what: str, column: int) -> ConditionError:
        shown = self.original if len(self.original) <= 80 else self.original[:77] + "..."
        return ConditionError(f"condition {shown!r}, column {column}: {what}; use comparisons, "
                              "and/or/not, env.NAME and success()/failure()/always()/cancelled()", column)

    def _peek(self, ahead: int = 0) -> tuple[str, str, int]:
        j = self.i + ahead
        return self.tokens[j] if j < len(self.tokens) else ("end", "", self.end_column)

    def _take(self, text: str | None = None) -> tuple[str, str, int]:
        token = self._peek()
        if text is not None and token[1] != text:
            found = f"{token[1]!r}" if token[0] != "end" else "the end"
            raise self._error(f"expected {text!r}, found {found}", token[2])
        self.i += 1
        return token

    def parse(self) -> Expr:
        if not self.tokens:
            raise self._error("empty expression", 1)
        expr = self._or()
        kind, text, column = self._peek()
        if kind != "end":
            raise self._error(f"unexpected {text!r}", column)
        return expr

    def _or(self) -> Expr:
        operands = [self._and()]
        while self._peek()[1] in ("or", "||"):
            self._take()
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else BoolOp("or", tuple(operands))

    def _and(self) -> Expr:
        operands = [self._not()]
        while self._peek()[1] in ("and", "&&"):
            self._take()
            operands.append(self._not())
        return operands[0] if len(operands) == 1 else BoolOp("and", tuple(operands))

    def _not(self) -> Expr:
        if self._peek()[1] in ("not", "!"):
            with self._nested(self._peek()[2]):
                self._take()
                return Not(self._not())
        return self._compare()

    @contextmanager
    def _nested(self, column: int) -> Iterator[None]:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self._error(f"nested deeper than {MAX_NESTING} levels", column)
        try:
            yield
        finally:
            self.depth -= 1

    def _compare(self) -> Expr:
        left = self._primary()
        op = self._compare_op()
        if op is None:
            return left
        expr = Compare(op, left, self._primary())
        if self._compare_op(consume=False) is not None:
            raise self._error("comparisons do not chain; join them with `and`", self._peek()[2])
        return expr

    def _compare_op(self, consume: bool = True) -> CompareOp | None:
        text = self._peek()[1]
        if text in ("==", "!=", "<", "<=", ">", ">=", "in"):
            if consume:
                self._take()
            return text  # type: ignore[return-value]
        if text == "not" and self._peek(1)[1] == "in":
            if consume:
                self._take()
                self._take()
            return "not in"
        return None

    def _primary(self) -> Expr:
        kind, text, column = self._take()
        if kind == "string":
            return Literal(re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), text[1:-1]))
        if kind == "number":
            return Literal(float(text) if "." in text else int(text))
        if text == "(":
            with self._nested(column):
                expr = self._or()
            self._take(")")
            return expr
        if kind == "name" and text in _KEYWORDS:
            return Literal(_KEYWORDS[text])
        if kind == "name" and text in STATUS_FUNCTIONS:
            self._take("(")
            self._take(")")
            return StatusCall(text)
        if text == "env":
            return self._env()
        if kind == "name":
            if self._peek()[1] == "(":
                raise self._error(f"{text}() cannot be called", column)
            raise self._error(f"unknown name {text!r} (did you mean env.{text}?)", column)
        found = f"{text!r}" if kind != "end" else "the end"
        raise self._error(f"expected a value, found {found}", column)

    def _env(self) -> Expr:
        if self._peek()[1] == ".":
            self._take()
            kind, text, column = self._take()
            if kind != "name":
                raise self._error("expected a variable name after `env.`", column)
            return Env(text)
        if self._peek()[1] == "[":
            self._take()
            kind, text, column = self._take()
            if kind != "string":
                raise self._error("expected a quoted variable name in env[...]", column)
            self._take("]")
            return Env(text[1:-1])
        return Env(None)
