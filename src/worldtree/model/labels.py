"""Label selectors: which agents may run a job (seed 004's ``LabelSelector``).

A selector is ``match_labels`` (exact ``key: value`` pairs) plus ``match_expressions``
(``{key, operator, values}``); every term must hold (AND). Operators are the seed's six, spelled
as it spells them and read case-insensitively, with or without its protobuf prefix
(``IN``, ``in``, ``LABEL_OPERATOR_IN``):

===============  ===========================================================================
``IN``           the label exists and its value is one of ``values``
``NOT_IN``       the label is missing, or its value is none of ``values`` (seed 004, Arcade)
``EXISTS``       the label exists (any value); takes no ``values``
``NOT_EXISTS``   the label is missing; takes no ``values``
``GT`` / ``LT``  the label's value, read as a number, is greater / less than the one value
===============  ===========================================================================

GT/LT compare numbers, never strings (``"10" > "9"``); a label whose value is not a number fails
the term, and :meth:`LabelSelector.explain` says so. Arcade leaves GT/LT unimplemented; here they
work. Two expressions may name one key with different operators (``cpu-cores`` GT 4 and LT 17 is a
range); a key in both ``match_labels`` and ``match_expressions``, or one key twice with the same
operator, is refused as a mistake.

Pure data, JSON round-trippable: the selector is compiled into each graph node and sent to the
server, so the same object decides routing and explains why a job waits.
"""

from __future__ import annotations

import difflib
import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from worldtree.errors import UsageError

__all__ = ["OPERATORS", "LabelError", "LabelExpression", "LabelSelector", "Operator", "check_key", "check_value",
           "parse_labels", "parse_number"]

Operator = Literal["IN", "NOT_IN", "EXISTS", "NOT_EXISTS", "GT", "LT"]
OPERATORS: tuple[Operator, ...] = ("IN", "NOT_IN", "EXISTS", "NOT_EXISTS", "GT", "LT")
_PREFIX = "LABEL_OPERATOR_"
#: label keys and values: what the agent CLI and the API accept (printable, no separators)
_KEY = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._/-]{0,126}[A-Za-z0-9])?$")
#: what GT/LT read as a number: ASCII decimal (``16``, ``-2``, ``2.5``, ``1e3``); Python's ``float``
#: alone also takes ``1_000`` and other scripts' digits (``"٣"`` is 3.0), which no one means as a number
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


class LabelError(UsageError):
    """A label key or value no agent can carry. A ``ValueError`` too (pydantic reports it where it
    validates), and a :class:`UsageError` (exit 2, HTTP 400, INVALID_ARGUMENT) where it is raised
    directly (``worldtree agent --labels``, UpdateLabels)."""


def parse_number(text: str) -> float | None:
    """The number a label value spells (``16``, ``-2``, ``2.5``), or None; ``nan``/``inf``, ``1_000``
    and non-ASCII digits are not numbers."""
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def _scalar(value: Any, what: str) -> str:
    """A YAML scalar as the string an agent's label holds (``true`` -> ``"true"``, ``8`` -> ``"8"``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ValueError(f"{what} must be a string, number or boolean, not "
                     f"{'null' if value is None else type(value).__name__}")


def check_key(key: str) -> str:
    """``key`` when agents could carry it (what ``parse_labels`` accepts); else ValueError saying why."""
    if not _KEY.match(key):
        raise LabelError(f"label key {key!r} is not valid; use letters, digits and . _ / - (starting and ending "
                         "with a letter or digit, at most 128 characters)")
    return key


def check_value(key: str, value: str) -> str:
    """``value`` when an agent's label could hold it: no spaces or control characters."""
    if any(c.isspace() or not c.isprintable() for c in value):
        raise LabelError(f"label {key!r}: the value {value!r} holds spaces or control characters, which no "
                         "agent's label can hold")
    return value


def _known_keys(value: Any, known: tuple[str, ...], what: str) -> Any:
    """Refuse a key the model does not have, with a did-you-mean: a misspelt term silently dropped
    would let a job run on any agent."""
    if isinstance(value, dict):
        for key in value:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
                hint = f"did you mean `{close[0]}`?" if close else f"{what} takes {', '.join(known)}"
                raise LabelError(f"unknown key `{key}`; {hint}")
    return value


class LabelExpression(BaseModel):
    """One ``{key, operator, values}`` term."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        return _known_keys(value, ("key", "operator", "values"), "an expression")

    key: str = Field(min_length=1)
    operator: Operator
    values: list[str] = Field(default_factory=list)

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        return check_key(value)

    @field_validator("operator", mode="before")
    @classmethod
    def _operator(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError(f"operator must be one of {', '.join(OPERATORS)}")
        name = value.strip().upper().replace("-", "_").removeprefix(_PREFIX)
        if name not in OPERATORS:
            raise ValueError(f"unknown operator {value!r}; use one of {', '.join(OPERATORS)}")
        return name

    @field_validator("values", mode="before")
    @classmethod
    def _values(cls, value: Any) -> Any:
        if value is None:
            return []
        if not isinstance(value, list):
            value = [value]
        return [_scalar(v, "each of `values`") for v in value]

    @model_validator(mode="after")
    def _arity(self) -> LabelExpression:
        for value in self.values:
            check_value(self.key, value)
        op = self.operator
        if op in ("EXISTS", "NOT_EXISTS") and self.values:
            raise ValueError(f"{self.key}: {op} takes no `values`; remove them")
        if op in ("IN", "NOT_IN") and not self.values:
            raise ValueError(f"{self.key}: {op} needs `values`, a list of one or more label values")
        if op in ("GT", "LT"):
            if len(self.values) != 1:
                raise ValueError(f"{self.key}: {op} needs exactly one value in `values`, a number (e.g. [\"8\"])")
            if parse_number(self.values[0]) is None:
                raise ValueError(f"{self.key}: {op} compares numbers, and {self.values[0]!r} is not a number")
        return self

    def explain(self, labels: dict[str, str]) -> str | None:
        """None when the term holds for ``labels``; else why not, in words."""
        key, op, values = self.key, self.operator, self.values
        present = key in labels
        value = labels.get(key, "")
        if op == "EXISTS":
            return None if present else f"{key}: missing"
        if op == "NOT_EXISTS":
            return f"{key}: present ({_show(value)}), must be absent" if present else None
        if op == "NOT_IN":
            return f"{key}: {_show(value)} is in excluded {_list(values)}" if present and value in values \
                else None
        if not present:
            return f"{key}: missing"
        if op == "IN":
            return None if value in values else f"{key}: {_show(value)} is not in {_list(values)}"
        have, bound = parse_number(value), parse_number(values[0])
        if have is None:
            return f"{key}: {_quoted(value)} is not a number"
        assert bound is not None  # checked at construction
        ok = have > bound if op == "GT" else have < bound
        sign = ">" if op == "GT" else "<"
        return None if ok else f"{key}: {value} is not {sign} {values[0]}"


def _show(value: str) -> str:
    """A label value as explanations print it: bare when plain, quoted when empty or spaced."""
    return value if value and not any(c.isspace() or c in ",[]\"" for c in value) else _quoted(value)


def _list(values: list[str]) -> str:
    """``[a, b]``; an empty value shows as ``""`` (``[]`` read as no values at all)."""
    return "[" + ", ".join(_show(v) for v in values) + "]"


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class LabelSelector(BaseModel):
    """``match_labels`` AND every one of ``match_expressions``. An empty selector matches every agent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[LabelExpression] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        return _known_keys(value, ("match_labels", "match_expressions"), "a label selector")

    @field_validator("match_labels", mode="before")
    @classmethod
    def _match_labels(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError("match_labels must be a mapping of key: value")
        return {check_key(str(k)): check_value(str(k), _scalar(v, f"the value of {k!r}")) for k, v in value.items()}

    @field_validator("match_expressions", mode="before")
    @classmethod
    def _expressions(cls, value: Any) -> Any:
        return [] if value is None else value

    @model_validator(mode="after")
    def _no_duplicates(self) -> LabelSelector:
        seen: set[tuple[str, str]] = set()
        for expr in self.match_expressions:
            if expr.key in self.match_labels:
                raise ValueError(f"key {expr.key!r} is in both match_labels and match_expressions; "
                                 "keep one of them (all terms must hold, so one is enough)")
            if (expr.key, expr.operator) in seen:
                raise ValueError(f"key {expr.key!r} appears twice with operator {expr.operator} in "
                                 "match_expressions; merge their values into one expression")
            seen.add((expr.key, expr.operator))
        return self

    @classmethod
    def check_labels(cls, value: Any) -> dict[str, str]:
        """The ``labels:`` shorthand's mapping as strings; ValueError saying what is wrong."""
        if not isinstance(value, dict):
            raise ValueError("labels must be a mapping of key: value (e.g. {env: production})")
        return {check_key(str(k)): check_value(str(k), _scalar(v, f"the value of {k!r}")) for k, v in value.items()}

    @classmethod
    def from_labels(cls, labels: dict[str, Any]) -> LabelSelector:
        """The shorthand ``labels: {env: production}``: exact matches only."""
        return cls(match_labels=labels)

    def is_empty(self) -> bool:
        return not self.match_labels and not self.match_expressions

    def explain(self, labels: dict[str, str]) -> str | None:
        """The FIRST failing term in words (``gpu: missing``, ``cpu-cores: 4 is not > 8``), or None
        when every term holds. ``match_labels`` are checked first, in the order written."""
        for key, want in self.match_labels.items():
            if key not in labels:
                return f"{key}: missing"
            if labels[key] != want:
                return f"{key}: {_show(labels[key])} is not {_show(want)}"
        for expr in self.match_expressions:
            reason = expr.explain(labels)
            if reason is not None:
                return reason
        return None

    def matches(self, labels: dict[str, str]) -> bool:
        return self.explain(labels) is None

    def describe(self) -> str:
        """The selector in one line, as a user would write it: ``env=production, cpu-cores GT 8``."""
        parts = [f"{k}={v}" for k, v in self.match_labels.items()]
        for e in self.match_expressions:
            parts.append(f"{e.key} {e.operator}" + (f" {_list(e.values)}" if e.values else ""))
        return ", ".join(parts) or "(any agent)"


def parse_labels(text: str) -> dict[str, str]:
    """``os=linux,gpu=true,cpu-cores=16`` -> a dict, for ``worldtree agent --labels``.

    LabelError (a ValueError) saying what is wrong: a pair without ``=``, an empty or malformed key, a key twice.
    Values may be empty (``tier=``) but hold no ``,`` (it separates pairs).
    """
    out: dict[str, str] = {}
    if not text.strip():
        return out
    for raw in text.split(","):
        pair = raw.strip()
        key, sep, value = pair.partition("=")
        key, value = key.strip(), value.strip()
        if not sep:
            raise LabelError(f"label {pair!r} has no '='; write key=value pairs separated by commas "
                             "(os=linux,gpu=true)")
        check_key(key)
        check_value(key, value)
        if key in out:
            raise LabelError(f"label {key!r} is given twice; give each key once")
        out[key] = value
    return out
