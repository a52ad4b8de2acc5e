"""The operation contract: precheck -> plan -> run -> rollback (seed 001's Step, kubexm's Precheck/Run/Rollback).

* ``precheck(conn)`` reads the host (no side effects) and returns the state the operation
  will compare against and, after running, restore;
* ``plan(state)`` says exactly what would change (``change``), why nothing will (``none``), or
  why it cannot be known before running (``unknown``), and whether the change can be undone;
* ``run(conn, state)`` makes the change and returns the record rollback needs;
* ``rollback(conn, record)`` restores what was there; operations that cannot undo their change
  say so in the plan (``rollback: unavailable``) and raise :class:`RollbackUnavailable`.

Arguments are a pydantic model per operation (``extra="forbid"``), so a misspelled key or a
bad mode is a located error while planning, before any host changes.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from worldtree.ops.connection import Connection

__all__ = ["Args", "OpError", "Operation", "Planned", "RollbackUnavailable", "ValidMode", "text_diff"]

Kind = Literal["change", "none", "unknown"]


class OpError(Exception):
    """An operation failed on a host; the message is one line for the user."""


class RollbackUnavailable(OpError):
    """The change cannot be undone (the plan said so)."""


@dataclass(frozen=True, slots=True)
class Planned:
    kind: Kind
    text: str
    diff: str | None = None
    rollback: bool = True

    def render(self) -> str:
        head = {"change": "change", "none": "no change", "unknown": "unknown until run"}[self.kind]
        tail = "" if self.kind == "none" or self.rollback else "; rollback: unavailable"
        return f"{head}: {self.text}{tail}"


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_mode(value: Any) -> int:
    """``"0644"``/``"644"``/``0o644`` -> 0o644. YAML reads an unquoted ``0644`` as octal already."""
    if isinstance(value, bool):
        raise ValueError("a mode is an octal string such as \"0644\"")
    if isinstance(value, int):
        mode = value
    elif isinstance(value, str) and value.strip().isdigit():
        try:
            mode = int(value.strip(), 8)
        except ValueError:
            raise ValueError(f"{value!r} is not octal; write it like \"0644\"") from None
    else:
        raise ValueError("a mode is an octal string such as \"0644\"")
    if not 0 <= mode <= 0o7777:
        raise ValueError(f"mode {value!r} is out of range (0000-7777)")
    return mode


class ValidMode:
    """Mixin of the ``mode`` validator for argument models."""

    @field_validator("mode", mode="before", check_fields=False)
    @classmethod
    def _mode(cls, value: Any) -> Any:
        return None if value is None else parse_mode(value)


@dataclass
class OpContext:
    """What an operation may read while being built: the playbook's folder (for ``src``)."""

    base_dir: Path
    extra: dict[str, Any] = field(default_factory=dict)


class Operation(ABC):
    name: ClassVar[str]
    args_model: ClassVar[type[Args]]

    def __init__(self, args: Args, context: OpContext) -> None:
        self.args = args
        self.context = context

    def writes(self) -> list[str]:
        """Paths this operation changes (a later operation reading one cannot be planned exactly)."""
        return []

    def reads(self) -> list[str]:
        """Paths whose state the plan of this operation depends on."""
        return self.writes()

    @abstractmethod
    async def precheck(self, conn: Connection) -> Any: ...

    @abstractmethod
    def plan(self, state: Any) -> Planned: ...

    @abstractmethod
    async def run(self, conn: Connection, state: Any) -> Any: ...

    @abstractmethod
    async def rollback(self, conn: Connection, record: Any) -> None: ...


def text_diff(path: str, old: bytes | None, new: bytes) -> str:
    """A unified diff of two versions of a file; binary content is only named."""
    try:
        before = (old or b"").decode("utf-8").splitlines(keepends=True)
        after = new.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return f"binary content of {path} differs\n"
    lines = difflib.unified_diff(before, after, f"{path} (before)" if old is not None else "/dev/null",
                                 f"{path} (after)")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
