"""Operation names -> classes. Built-in ones here; ``register`` adds a user's own class."""

from __future__ import annotations

from worldtree.ops.commands import Command
from worldtree.ops.files import FileAbsent, FileDirectory, FileFile, FileLine, FileLink, FileTemplate
from worldtree.ops.operation import Operation

__all__ = ["OPERATIONS", "register"]

OPERATIONS: dict[str, type[Operation]] = {
    cls.name: cls for cls in (FileDirectory, FileFile, FileTemplate, FileLine, FileAbsent, FileLink, Command)}


def register(cls: type[Operation]) -> type[Operation]:
    """Add an operation class (usable as a decorator); its ``name`` is what ``op:`` says."""
    OPERATIONS[cls.name] = cls
    return cls
