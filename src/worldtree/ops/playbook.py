"""The playbook document: ``name``, ``hosts``, ``vars``, ``tasks``, ``handlers`` (and ``use:`` modules).

Loading checks the shape and every name a task refers to (operations, ``needs``, ``notify``)
and reports each problem at ``file:line:col``. A module (``use: modules/nginx``) is a folder
with ``tasks.yaml`` (a list of tasks), optional ``defaults.yaml`` (variables) and its own
templates; its tasks are named ``<module>/<task>`` and see ``defaults`` overridden by the
``with:`` of the ``use:``. Arguments of operations are checked per host while planning, once
their ``{{ }}`` values are rendered.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worldtree.compile.diagnostics import Diagnostic
from worldtree.compile.yaml_source import Positions, YamlSourceError, load_yaml
from worldtree.errors import SpecError
from worldtree.ops.entrypoints import OpsFileError, load_user_ops
from worldtree.ops.operation import OpError
from worldtree.ops.registry import OPERATIONS
from worldtree.ops.templates import shown_path

__all__ = ["Playbook", "TaskSpec", "load_playbook"]

_TOP = {"name", "hosts", "vars", "tasks", "handlers"}
_TASK = {"name", "op", "with", "needs", "notify", "rollback", "use", "become", "become_user"}
_HANDLER = {"name", "op", "with", "become", "become_user"}


@dataclass
class TaskSpec:
    """One task (or handler) as written, with where it was written."""

    name: str
    op: str
    args: dict[str, Any]
    needs: list[str] = field(default_factory=list)
    notify: list[str] = field(default_factory=list)
    rollback: str | None = None
    file: str = "<playbook>"
    positions: Positions | None = None
    path: tuple[Any, ...] = ()
    base_dir: Path = Path(".")
    vars: dict[str, Any] = field(default_factory=dict)
    #: run through sudo (True), not (False), or as the inventory host says (None); docs/ops.md "become"
    become: bool | None = None
    become_user: str | None = None

    def at(self, *sub: Any) -> tuple[int, int]:
        """(line, col) of ``sub`` inside this task, or of the nearest enclosing value."""
        if self.positions is None:
            return (1, 1)
        full = (*self.path, *sub)
        for end in range(len(full), -1, -1):
            found = self.positions.get(full[:end])
            if found is not None:
                return found
        return (1, 1)

    def diagnostic(self, message: str, *sub: Any, code: str = "playbook") -> Diagnostic:
        return Diagnostic("error", code, message, self.file, *self.at(*sub))


@dataclass
class Playbook:
    name: str
    hosts: list[str]
    vars: dict[str, Any]
    tasks: list[TaskSpec]
    handlers: list[TaskSpec]
    file: str
    base_dir: Path
    #: (line, col) of `hosts:` in the playbook, for errors about them
    hosts_at: tuple[int, int] = (1, 1)

    def order(self) -> list[TaskSpec]:
        """Tasks in an order that respects ``needs`` (file order otherwise; checked acyclic at load)."""
        by_name = {t.name: t for t in self.tasks}
        done: dict[str, None] = {}

        def visit(task: TaskSpec) -> None:
            if task.name in done:
                return
            for need in task.needs:
                visit(by_name[need])
            done[task.name] = None

        for task in self.tasks:
            visit(task)
        return [by_name[n] for n in done]

    def dependents(self, name: str) -> set[str]:
        """Tasks that need ``name``, directly or through others."""
        out: set[str] = set()
        frontier = [name]
        while frontier:
            current = frontier.pop()
            for task in self.tasks:
                if current in task.needs and task.name not in out:
                    out.add(task.name)
                    frontier.append(task.name)
        return out


def _read(path: Path, what: str) -> tuple[Any, Positions, str, list[Diagnostic]]:
    shown = shown_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([Diagnostic("error", "file", f"no such {what}; check the path", shown)]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Diagnostic("error", "file", f"cannot read the {what}: {exc}", shown)]) from None
    try:
        data, positions, diags = load_yaml(text, shown)
    except YamlSourceError as exc:
        raise SpecError([exc.diagnostic]) from None
    return data, positions, shown, diags


def load_playbook(path: str | Path) -> Playbook:
    """Read and check a playbook; SpecError listing every problem, located."""
    source = Path(path)
    data, positions, shown, diags = _read(source, "playbook")
    try:
        load_user_ops(source.resolve().parent)  # entry-point operations and those of ./ops/*.py
    except OpsFileError as exc:
        raise SpecError([*diags, Diagnostic("error", "operations", exc.message, exc.file, exc.line, 1)]) from None
    except OpError as exc:
        raise SpecError([*diags, Diagnostic("error", "operations", str(exc), shown)]) from None

    def err(message: str, *where: Any) -> None:
        at = positions.get(tuple(where)) or (1, 1)
        diags.append(Diagnostic("error", "playbook", message, shown, *at))

    if not isinstance(data, dict):
        err("a playbook is a mapping with `hosts` and `tasks`")
        raise SpecError(diags)
    for key in data:
        if key not in _TOP:
            err(f"unknown key {key!r}{_suggest(str(key), _TOP)}", key, "__key__")
    hosts = data.get("hosts", ["local"])
    if isinstance(hosts, str):
        hosts = [hosts]
    if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) for h in hosts):
        err("`hosts` is a list of inventory host or group names, or `local`", "hosts")
        hosts = []
    pvars = data.get("vars") or {}
    if not isinstance(pvars, dict):
        err("`vars` is a mapping of name: value", "vars")
        pvars = {}
    base = source.resolve().parent
    tasks: list[TaskSpec] = []
    raw_tasks = data.get("tasks")
    if not isinstance(raw_tasks, list):
        err("`tasks` is a list of tasks", "tasks")
        raw_tasks = []
    for i, raw in enumerate(raw_tasks):
        tasks.extend(_tasks(raw, ("tasks", i), shown, positions, base, diags))
    handlers: list[TaskSpec] = []
    raw_handlers = data.get("handlers") or []
    if not isinstance(raw_handlers, list):
        err("`handlers` is a list of tasks", "handlers")
        raw_handlers = []
    for i, raw in enumerate(raw_handlers):
        handlers.extend(_tasks(raw, ("handlers", i), shown, positions, base, diags, handler=True))
    _check_names(tasks, handlers, diags)
    if any(d.severity == "error" for d in diags):
        raise SpecError(sorted(diags, key=lambda d: (d.file, d.line, d.col)))
    name = data.get("name")
    return Playbook(str(name) if name else source.stem, hosts, pvars, tasks, handlers, shown, base,
                    positions.get(("hosts",)) or (1, 1))


def _tasks(raw: Any, where: tuple[Any, ...], shown: str, positions: Positions, base: Path,
           diags: list[Diagnostic], *, handler: bool = False, prefix: str = "",
           mvars: dict[str, Any] | None = None) -> list[TaskSpec]:
    spec = TaskSpec(name="", op="", args={}, file=shown, positions=positions, path=where, base_dir=base,
                    vars=dict(mvars or {}))
    if not isinstance(raw, dict):
        diags.append(spec.diagnostic("a task is a mapping with `name` and `op`"))
        return []
    allowed = _HANDLER if handler else _TASK
    for key in raw:
        if key not in allowed:
            diags.append(spec.diagnostic(f"unknown key {key!r}{_suggest(str(key), allowed)}", key, "__key__"))
    if "use" in raw and not handler:
        return _module(raw, spec, diags, prefix)
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        diags.append(spec.diagnostic("every task needs a `name` (needs/notify refer to it)"))
        name = f"#{where[-1]}"
    spec.name = prefix + name
    op = raw.get("op")
    if not isinstance(op, str) or op not in OPERATIONS:
        hint = _suggest(str(op), OPERATIONS) or f"; known: {', '.join(sorted(OPERATIONS))}"
        diags.append(spec.diagnostic(f"unknown operation {op!r}{hint}", "op"))
    else:
        spec.op = op
    args = raw.get("with") or {}
    if not isinstance(args, dict):
        diags.append(spec.diagnostic("`with` is a mapping of the operation's arguments", "with"))
        args = {}
    spec.args = args
    become, become_user = raw.get("become"), raw.get("become_user")
    if become is not None and not isinstance(become, bool):
        diags.append(spec.diagnostic("`become` is true or false", "become"))
    else:
        spec.become = become
    if become_user is not None and not (isinstance(become_user, str) and become_user):
        diags.append(spec.diagnostic("`become_user` is a user name", "become_user"))
    else:
        spec.become_user = become_user
    for key in ("needs", "notify"):
        value = raw.get(key) or []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            diags.append(spec.diagnostic(f"`{key}` is a list of task names", key))
            value = []
        setattr(spec, key, [prefix + v for v in value] if key == "needs" else list(value))
    rollback = raw.get("rollback")
    if rollback is not None and (not isinstance(rollback, str) or spec.op != "command"):
        diags.append(spec.diagnostic("`rollback` is a shell line, for `op: command` only (other operations "
                                     "restore what they recorded)", "rollback"))
    spec.rollback = rollback if isinstance(rollback, str) else None
    return [spec]


def _module(raw: dict[str, Any], spec: TaskSpec, diags: list[Diagnostic], prefix: str) -> list[TaskSpec]:
    use = raw.get("use")
    if not isinstance(use, str) or not use:
        diags.append(spec.diagnostic("`use` names a module folder (tasks.yaml, defaults.yaml, templates/)", "use"))
        return []
    folder = (spec.base_dir / use).resolve()
    if prefix.count("/") >= 8:
        diags.append(spec.diagnostic(f"modules nest deeper than 8 levels at {use!r}; is a module using itself?",
                                     "use"))
        return []
    if not (folder / "tasks.yaml").is_file():
        diags.append(spec.diagnostic(f"module {use!r}: no {shown_path(folder / 'tasks.yaml')}", "use"))
        return []
    params = raw.get("with") or {}
    if not isinstance(params, dict):
        diags.append(spec.diagnostic("`with` of a module is a mapping of its variables", "with"))
        params = {}
    defaults: dict[str, Any] = {}
    if (folder / "defaults.yaml").is_file():
        try:
            data, _, dshown, ddiags = _read(folder / "defaults.yaml", "module defaults")
        except SpecError as exc:
            diags.extend(exc.diagnostics)
            return []
        diags.extend(ddiags)
        if data is not None and not isinstance(data, dict):
            diags.append(Diagnostic("error", "playbook", "defaults.yaml is a mapping of name: value", dshown))
        defaults = data or {}
    try:
        data, positions, shown, tdiags = _read(folder / "tasks.yaml", "module tasks")
    except SpecError as exc:
        diags.extend(exc.diagnostics)
        return []
    diags.extend(tdiags)
    if isinstance(data, dict):
        data = data.get("tasks")
    if not isinstance(data, list):
        diags.append(Diagnostic("error", "playbook", "a module's tasks.yaml is a list of tasks", shown))
        return []
    name = f"{prefix}{raw.get('name') or folder.name}/"
    mvars = {**spec.vars, **defaults, **params}
    out: list[TaskSpec] = []
    for i, item in enumerate(data):
        out.extend(_tasks(item, (i,), shown, positions, folder, diags, prefix=name, mvars=mvars))
    return out


def _check_names(tasks: list[TaskSpec], handlers: list[TaskSpec], diags: list[Diagnostic]) -> None:
    seen: dict[str, TaskSpec] = {}
    for task in tasks:
        if task.name in seen:
            diags.append(task.diagnostic(f"task name {task.name!r} is used twice; names must be unique", "name"))
        seen[task.name] = task
    handler_names = {h.name for h in handlers}
    if len(handler_names) != len(handlers):
        diags.append(handlers[-1].diagnostic("handler names must be unique", "name"))
    for task in tasks:
        for i, need in enumerate(task.needs):
            if need not in seen:
                diags.append(task.diagnostic(f"needs unknown task {need!r}{_suggest(need, seen)}", "needs", i))
        for i, note in enumerate(task.notify):
            if note not in handler_names:
                diags.append(task.diagnostic(f"notifies unknown handler {note!r}{_suggest(note, handler_names)}",
                                             "notify", i))
    state: dict[str, int] = {}

    def visit(task: TaskSpec, trail: tuple[str, ...]) -> None:
        if state.get(task.name) == 2:
            return
        if state.get(task.name) == 1:
            cycle = " -> ".join((*trail[trail.index(task.name):], task.name))
            diags.append(task.diagnostic(f"`needs` form a cycle: {cycle}", "needs"))
            return
        state[task.name] = 1
        for need in task.needs:
            if need in seen:
                visit(seen[need], (*trail, task.name))
        state[task.name] = 2

    for task in tasks:
        visit(task, ())


def _suggest(name: str, choices: Any) -> str:
    close = difflib.get_close_matches(name, [str(c) for c in choices], n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
