"""Plan and apply a playbook on hosts: facts -> plan every (task, host) -> apply -> rollback.

Planning does everything that can fail on input before any host changes: it connects to every
host and gathers facts (concurrently), renders ``with:`` values and templates, checks each
operation's arguments and runs every precheck. Any problem is a located diagnostic and the
apply stops there (exit 2), with nothing changed anywhere.

Applying runs hosts in parallel (at most ``forks`` at once) and the tasks of one host one at a
time in ``needs`` order. Each operation is prechecked again right before it runs (an earlier
task may have changed what it reads), so the second apply of a playbook changes nothing and
says so. Handlers run once per host at the end, when a task that notifies them changed
something. On failure: ``stop`` (no further task starts on any host), ``continue`` (tasks that
do not need the failed one go on), or ``rollback`` (stop, then undo every change of this apply
in reverse order, from what each operation recorded).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from worldtree.compile.diagnostics import Diagnostic
from worldtree.connectors.ssh.pool import SshPool
from worldtree.errors import SpecError, WorldtreeError
from worldtree.ops.command import sh
from worldtree.ops.connection import Connection, LocalConnection
from worldtree.ops.facts.host import FACTS_COMMAND, host_facts, parse_facts
from worldtree.ops.inventory import Inventory
from worldtree.ops.operation import OpContext, Operation, OpError, Planned, RollbackUnavailable
from worldtree.ops.playbook import Playbook, TaskSpec
from worldtree.ops.registry import OPERATIONS
from worldtree.ops.secrets import Secrets, mask
from worldtree.ops.templates import TemplateError, Templates, is_template

__all__ = ["ApplyPlan", "HostPlan", "Step", "apply_plan", "build_plan"]

OnFailure = Literal["stop", "continue", "rollback"]
Status = Literal["pending", "changed", "ok", "failed", "skipped"]


@dataclass
class Step:
    """One node of the apply graph: a task (or handler) on a host."""

    task: TaskSpec
    host: str
    op: Operation
    planned: Planned | None = None
    #: the plan made again right before running (what the run did)
    applied: Planned | None = None
    status: Status = "pending"
    record: Any = None
    error: str | None = None
    rollback: str | None = None


@dataclass
class HostPlan:
    name: str
    conn: Connection
    facts: dict[str, Any]
    steps: list[Step] = field(default_factory=list)
    handlers: list[Step] = field(default_factory=list)
    #: the inventory host's sudo settings (user, password, program), for tasks that say ``become``
    become: tuple[str, str | None, str] = ("root", None, "sudo")
    _as: dict[tuple[bool, str], Connection] = field(default_factory=dict)

    def conn_for(self, task: TaskSpec) -> Connection:
        """The connection ``task`` runs through: the host's, or one through sudo (or without it)
        when the task's ``become``/``become_user`` differ from the host's."""
        if task.become is None and task.become_user is None:
            return self.conn
        from worldtree.ops.become import BecomeConnection

        login = self.conn.inner if isinstance(self.conn, BecomeConnection) else self.conn
        wanted = task.become if task.become is not None else isinstance(self.conn, BecomeConnection)
        if not wanted:
            return login
        user = task.become_user or (self.conn.user if isinstance(self.conn, BecomeConnection) else self.become[0])
        if isinstance(self.conn, BecomeConnection) and self.conn.user == user:
            return self.conn
        key = (True, user)
        if key not in self._as:
            self._as[key] = BecomeConnection(login, user, self.become[1], self.become[2])
        return self._as[key]

    async def close(self) -> None:
        for conn in [*self._as.values(), self.conn]:
            try:
                await conn.close()
            except Exception:  # closing is best effort; the pool closes the connections
                pass


@dataclass
class ApplyPlan:
    playbook: Playbook
    hosts: list[HostPlan]
    pool: SshPool | None = None
    #: ``${NAME}`` values the playbook used: shown as ``***`` wherever the plan or results are shown
    secrets: Secrets = field(default_factory=lambda: Secrets(None))

    def steps(self) -> list[Step]:
        return [s for h in self.hosts for s in h.steps]

    def count(self, kind: str) -> int:
        return sum(1 for s in self.steps() if s.planned is not None and s.planned.kind == kind)

    async def close(self) -> None:
        for host in self.hosts:
            await host.close()
        if self.pool is not None:
            await self.pool.close()


def _render(value: Any, context: Mapping[str, Any], templates: Templates, task: TaskSpec,
            where: tuple[Any, ...]) -> Any:
    if isinstance(value, str) and is_template(value):
        return templates.render_string(value, context, task.file, *task.at(*where))
    if isinstance(value, dict):
        return {k: _render(v, context, templates, task, (*where, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, context, templates, task, (*where, i)) for i, v in enumerate(value)]
    return value


def _build_op(task: TaskSpec, host: str, context: Mapping[str, Any], templates: dict[Path, Templates],
              secrets: Secrets) -> Operation:
    """The operation of ``task`` for ``host``; SpecError (located) for bad arguments or templates."""
    tpl = templates.setdefault(task.base_dir, Templates(task.base_dir))
    ctx = {**context, **task.vars}
    raw_args, missing = secrets.expand(task.args)
    raw_rollback, missing_rollback = secrets.expand(task.rollback)
    if missing or missing_rollback:
        name = missing or missing_rollback
        where = ("with",) if missing else ("rollback",)
        raise SpecError([task.diagnostic(f"task {task.name!r} uses ${{{name}}}, which is not set: put it in "
                                         "--secrets-file or the environment (write $${NAME} for a literal)",
                                         *where, code="secret")])
    try:
        rendered = _render(raw_args, ctx, tpl, task, ("with",))
        cls = OPERATIONS[task.op]
        try:
            args = cls.args_model.model_validate(rendered)
        except ValidationError as exc:
            diags = []
            for err in exc.errors():
                loc = [p for p in err["loc"] if isinstance(p, str | int)]
                msg = err["msg"].removeprefix("Value error, ")
                if err["type"] == "extra_forbidden":
                    fields = ", ".join(cls.args_model.model_fields)
                    msg = f"unknown argument {loc[-1]!r} of {task.op}; it takes {fields}"
                elif err["type"] == "missing":
                    msg = f"{task.op} needs `{'.'.join(map(str, loc))}`"
                diags.append(task.diagnostic(f"task {task.name!r} on {host}: {msg}", "with", *loc[:1],
                                             code="argument"))
            raise SpecError(diags) from None
        rollback = _render(raw_rollback, ctx, tpl, task, ("rollback",))
        extra: dict[str, Any] = {"rollback": rollback, "secrets": secrets.values()}
        if task.op == "file.template":
            extra["rendered"] = tpl.render_file(str(rendered["src"]), ctx)
        return cls(args, OpContext(task.base_dir, extra))
    except TemplateError as exc:
        raise SpecError([exc.diagnostic]) from None


async def _local_facts(conn: LocalConnection) -> dict[str, Any]:
    result = await conn.run(sh(FACTS_COMMAND))
    return parse_facts(result.stdout).model_dump()


async def build_plan(playbook: Playbook, inventory: Inventory | None, *, limit: list[str] | None = None,
                     env: Mapping[str, str] | None = None, config: Mapping[str, object] | None = None,
                     forks: int = 20) -> ApplyPlan:
    """Connect, gather facts, build and precheck every (task, host); SpecError before any change."""
    diags: list[Diagnostic] = []
    names: list[str]
    local = playbook.hosts == ["local"]
    if local:
        names = ["local"]
    else:
        if inventory is None:
            raise SpecError([Diagnostic("error", "inventory", f"hosts {playbook.hosts} need an inventory; "
                                        "pass -i inventory.yaml (or write `hosts: local`)", playbook.file)])
        try:
            names = inventory.resolve(playbook.hosts)
        except (KeyError, ValueError) as exc:
            raise SpecError([Diagnostic("error", "hosts", str(exc.args[0]) if exc.args else str(exc),
                                        playbook.file, *playbook.hosts_at)]) from None
    if limit:
        try:
            wanted = set(inventory.resolve(limit)) if inventory is not None and not local else set(limit)
        except (KeyError, ValueError) as exc:
            raise SpecError([Diagnostic("error", "limit", f"--limit: {exc.args[0] if exc.args else exc}",
                                        "<command line>")]) from None
        names = [n for n in names if n in wanted]
    pool = None if local else SshPool(config)
    plan = ApplyPlan(playbook, [], pool, Secrets(env))
    try:
        hosts = await _connect(plan, names, inventory, env, diags)
        if diags:
            raise SpecError(diags)
        templates: dict[Path, Templates] = {}
        secrets = plan.secrets
        order = playbook.order()
        for host in hosts:
            spec = inventory.host(host.name) if inventory is not None and not local else None
            hvars = dict(spec.vars) if spec is not None else {}
            context = {**playbook.vars, **hvars, "facts": host.facts, "inventory_hostname": host.name,
                       "host": {"name": host.name, "labels": dict(spec.labels) if spec else {}, "vars": hvars}}
            for task in order:
                try:
                    host.steps.append(Step(task, host.name, _build_op(task, host.name, context, templates, secrets)))
                except SpecError as exc:
                    diags.extend(exc.diagnostics)
            for handler in playbook.handlers:
                try:
                    host.handlers.append(Step(handler, host.name, _build_op(handler, host.name, context,
                                                                           templates, secrets)))
                except SpecError as exc:
                    diags.extend(exc.diagnostics)
        if diags:
            raise SpecError(_unique(diags))
        limiter = asyncio.Semaphore(max(1, forks))
        results = await asyncio.gather(*(_plan_host(h, limiter) for h in hosts))
        for found in results:
            diags.extend(found)
        if diags:
            raise SpecError(diags)
        plan.hosts = hosts
    except SpecError as exc:
        await plan.close()
        values = plan.secrets.values()
        raise SpecError([replace(d, message=mask(d.message, values)) for d in exc.diagnostics]) from None
    except BaseException:
        await plan.close()
        raise
    return plan


def _unique(diags: list[Diagnostic]) -> list[Diagnostic]:
    return list(dict.fromkeys(diags))


async def _connect(plan: ApplyPlan, names: list[str], inventory: Inventory | None,
                   env: Mapping[str, str] | None, diags: list[Diagnostic]) -> list[HostPlan]:
    if plan.pool is None:
        conn = LocalConnection()
        return [HostPlan("local", conn, await _local_facts(conn))]
    assert inventory is not None
    from worldtree.ops.ssh_connection import SshConnection

    pool = plan.pool
    targets = {}
    for name in names:
        try:
            targets[name] = inventory.target(name, env)
        except WorldtreeError as exc:
            diags.append(Diagnostic("error", "host", f"host {name}: {exc}", inventory.source))
    pool.prewarm(targets.values())

    async def one(name: str) -> HostPlan | None:
        try:
            facts = (await host_facts(pool, targets[name])).model_dump()
        except WorldtreeError as exc:
            diags.append(Diagnostic("error", "unreachable", f"{exc}; nothing was changed on any host",
                                    plan.playbook.file, *plan.playbook.hosts_at))
            return None
        conn: Connection = SshConnection(pool, targets[name])
        spec = inventory.host(name)
        from worldtree.ops.become import become_settings

        try:
            settings = become_settings(spec, plan.secrets, name, inventory.source)
        except SpecError as exc:
            diags.extend(exc.diagnostics)
            return None
        if spec.become:
            from worldtree.ops.become import BecomeConnection

            conn = BecomeConnection(conn, *settings)
        return HostPlan(name, conn, facts, become=settings)

    found = await asyncio.gather(*(one(n) for n in targets))
    plan.hosts = [h for h in found if h is not None]
    return plan.hosts


async def _plan_host(host: HostPlan, limiter: asyncio.Semaphore) -> list[Diagnostic]:
    """Precheck and plan every step of one host, in order; exact paths changed by an earlier step
    make a later plan ``unknown until run`` rather than a guess."""
    diags: list[Diagnostic] = []
    changed_by: dict[str, str] = {}
    async with limiter:
        for step in host.steps:
            try:
                state = await step.op.precheck(host.conn_for(step.task))
                planned = step.op.plan(state)
            except (OpError, WorldtreeError, OSError) as exc:
                diags.append(step.task.diagnostic(f"task {step.task.name!r} on {host.name}: {exc}", code="plan"))
                continue
            earlier = next((changed_by[p] for p in step.op.reads() if p in changed_by), None)
            if earlier is not None:
                planned = Planned("unknown", f"task {earlier!r} changes it first; now: {planned.render()}",
                                  planned.diff, planned.rollback)
            if planned.kind != "none":
                for path in step.op.writes():
                    changed_by.setdefault(path, step.task.name)
            step.planned = planned
    return diags


@dataclass
class Outcome:
    changed: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    rolled_back: int = 0
    rollback_failed: int = 0

    @property
    def any_changed(self) -> bool:
        return self.changed > 0


Emit = Callable[[Step], None]


async def apply_plan(plan: ApplyPlan, *, on_failure: OnFailure = "stop", forks: int = 20,
                     emit: Emit | None = None, emit_rollback: Emit | None = None) -> Outcome:
    """Run the plan; ``emit`` is called after each step (for the console)."""
    stop = asyncio.Event()
    limiter = asyncio.Semaphore(max(1, forks))
    await asyncio.gather(*(_apply_host(plan.playbook, h, stop, on_failure, limiter, emit) for h in plan.hosts))
    out = Outcome()
    for step in [s for h in plan.hosts for s in (*h.steps, *h.handlers)]:
        if step.status == "changed":
            out.changed += 1
        elif step.status == "ok":
            out.ok += 1
        elif step.status == "failed":
            out.failed += 1
        elif step.status == "skipped":
            out.skipped += 1
    if on_failure == "rollback" and out.failed:
        await asyncio.gather(*(_rollback_host(h, limiter, emit_rollback) for h in plan.hosts))
        for step in [s for h in plan.hosts for s in (*h.steps, *h.handlers)]:
            if step.rollback == "rolled back":
                out.rolled_back += 1
            elif step.rollback is not None:
                out.rollback_failed += 1
    return out


async def _run_step(host: HostPlan, step: Step) -> None:
    try:
        conn = host.conn_for(step.task)
        state = await step.op.precheck(conn)
        step.applied = planned = step.op.plan(state)
        if planned.kind == "none":
            step.status = "ok"
            return
        step.record = await step.op.run(conn, state)
        step.status = "changed"
    except (OpError, WorldtreeError, OSError) as exc:
        step.status = "failed"
        step.error = str(exc)


async def _apply_host(playbook: Playbook, host: HostPlan, stop: asyncio.Event, on_failure: OnFailure,
                      limiter: asyncio.Semaphore, emit: Emit | None) -> None:
    async with limiter:
        blocked: dict[str, str] = {}
        notified: set[str] = set()
        for step in host.steps:
            if stop.is_set():
                step.status, step.error = "skipped", "stopped after a failure"
            elif step.task.name in blocked:
                step.status, step.error = "skipped", f"needs {blocked[step.task.name]!r}, which did not succeed"
            else:
                await _run_step(host, step)
            if step.status in ("failed", "skipped"):
                for name in playbook.dependents(step.task.name):
                    blocked.setdefault(name, step.task.name)
                if step.status == "failed" and on_failure != "continue":
                    stop.set()
            if step.status == "changed":
                notified.update(step.task.notify)
            if emit is not None:
                emit(step)
        for handler in host.handlers:
            if handler.task.name not in notified:
                continue
            if stop.is_set():
                handler.status, handler.error = "skipped", "stopped after a failure"
            else:
                await _run_step(host, handler)
                if handler.status == "failed" and on_failure != "continue":
                    stop.set()
            if emit is not None:
                emit(handler)


async def _rollback_host(host: HostPlan, limiter: asyncio.Semaphore, emit: Emit | None) -> None:
    async with limiter:
        for step in reversed([*host.steps, *host.handlers]):
            if step.status != "changed":
                continue
            try:
                await step.op.rollback(host.conn_for(step.task), step.record)
                step.rollback = "rolled back"
            except RollbackUnavailable as exc:
                step.rollback = f"rollback unavailable: {exc}"
            except (OpError, WorldtreeError, OSError) as exc:
                step.rollback = f"rollback failed: {exc}"
            if emit is not None:
                emit(step)
