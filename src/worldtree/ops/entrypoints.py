"""Operations users add: Python classes from the ``worldtree.operations`` entry-point group, or from
an ``ops/`` folder beside the playbook (or pipeline).

Both give :class:`~worldtree.ops.operation.Operation` subclasses with the same contract as the
built-in ones (precheck -> plan -> run -> rollback); they land in the one registry
(:data:`worldtree.ops.registry.OPERATIONS`), so ``op:`` finds them in playbooks and pipelines
alike. A built-in name cannot be replaced: a plugin that shadows ``file.file`` would change what
every playbook means without saying so.

An entry point names a class (``mypkg.ops:Frobnicate``) or a module whose Operation subclasses
are all taken. A local folder's ``*.py`` files are imported in name order; a file that fails to
import is an error naming the file and line, not a traceback.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import traceback
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from worldtree.ops.operation import Operation, OpError
from worldtree.ops.registry import OPERATIONS

__all__ = ["BUILTIN", "GROUP", "OpsFileError", "load_entry_points", "load_local_ops", "load_user_ops"]

GROUP = "worldtree.operations"

#: the names worldtree itself ships; user classes may not take them
BUILTIN = frozenset(OPERATIONS)

class OpsFileError(OpError):
    """A local operations file that cannot be imported: where (file, line) and why."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}:1: error: {message}")
        self.file, self.line, self.message = file, line, message


_loaded_groups = False
_loaded_dirs: set[Path] = set()


def _operations_in(module: ModuleType) -> list[type[Operation]]:
    return [obj for obj in vars(module).values()
            if inspect.isclass(obj) and issubclass(obj, Operation) and not inspect.isabstract(obj)
            and obj.__module__ == module.__name__ and isinstance(getattr(obj, "name", None), str)]


def _add(cls: type[Operation], origin: str) -> None:
    name = cls.name
    if name in BUILTIN and OPERATIONS.get(name) is not cls:
        raise OpError(f"{origin}: operation {name!r} is built into worldtree; give yours another name "
                      "(e.g. `mysite.{name}`)")
    if not hasattr(cls, "args_model"):
        raise OpError(f"{origin}: operation {name!r} has no `args_model` (a worldtree.ops.operation.Args subclass)")
    OPERATIONS[name] = cls


def load_entry_points() -> list[str]:
    """Register every operation of the ``worldtree.operations`` group (once per process)."""
    global _loaded_groups
    if _loaded_groups:
        return []
    _loaded_groups = True
    added = []
    for ep in entry_points(group=GROUP):
        origin = f"entry point {ep.name} = {ep.value}"
        try:
            obj = ep.load()
        except Exception as exc:
            raise OpError(f"{origin}: cannot load it: {type(exc).__name__}: {exc}") from None
        classes = _operations_in(obj) if isinstance(obj, ModuleType) else [obj]
        for cls in classes:
            if not (inspect.isclass(cls) and issubclass(cls, Operation)):
                raise OpError(f"{origin}: not an Operation subclass")
            _add(cls, origin)
            added.append(cls.name)
    return added


def load_local_ops(base_dir: str | Path) -> list[str]:
    """Register the operations defined in ``base_dir/ops/*.py`` (each folder once per process)."""
    folder = (Path(base_dir) / "ops").resolve()
    if folder in _loaded_dirs or not folder.is_dir():
        return []
    _loaded_dirs.add(folder)
    added = []
    for file in sorted(folder.glob("*.py")):
        module_name = f"worldtree_local_ops_{abs(hash(str(folder))):x}_{file.stem}"
        spec = importlib.util.spec_from_file_location(module_name, file)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[module_name]
            line = next((f.lineno or 1 for f in reversed(traceback.extract_tb(exc.__traceback__))
                         if f.filename == str(file)), 1)
            if isinstance(exc, SyntaxError) and exc.filename == str(file):
                line = exc.lineno or 1
            raise OpsFileError(str(file), line, f"cannot import this operations file: {type(exc).__name__}: {exc}") \
                from None
        for cls in _operations_in(module):
            _add(cls, str(file))
            added.append(cls.name)
    return added


def load_user_ops(base_dir: str | Path | None) -> list[str]:
    """Entry points, then the local ``ops/`` folder of ``base_dir`` (when given)."""
    added = load_entry_points()
    if base_dir is not None:
        added += load_local_ops(base_dir)
    return added
