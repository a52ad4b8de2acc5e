"""``worldtree apply PLAYBOOK -i INVENTORY``: plan every task on every host, print it, apply it.

Exit codes: 0 done (with ``--detailed-exitcode``: nothing changed, or with ``--check`` nothing
would), 3 something changed or would (``--detailed-exitcode`` only), 1 a task failed, 2 bad
input (nothing changed on any host).
"""

from __future__ import annotations

import asyncio
import os
from typing import Annotated, Any

import typer

__all__ = ["apply"]

_STATUS = {"changed": "changed", "ok": "ok (no change)", "failed": "FAILED", "skipped": "skipped"}


def apply(
    playbook: Annotated[str, typer.Argument(help="Playbook YAML file.")],
    inventory: Annotated[str | None, typer.Option("--inventory", "-i", help="Inventory file (SSH hosts).")] = None,
    check: Annotated[bool, typer.Option("--check", help="Plan only: change nothing.")] = False,
    diff: Annotated[bool, typer.Option("--diff", help="Show unified diffs of file changes.")] = False,
    limit: Annotated[str | None, typer.Option("--limit", help="Only these hosts/groups (comma-separated).")
                     ] = None,
    on_failure: Annotated[str, typer.Option("--on-failure", help="stop | continue | rollback")] = "stop",
    forks: Annotated[int, typer.Option("--forks", min=1, max=1000, help="Hosts applied at once.")] = 20,
    detailed_exitcode: Annotated[bool, typer.Option("--detailed-exitcode",
                                                    help="Exit 3 when something changed (or would).")] = False,
    secrets_file: Annotated[str | None, typer.Option(
        "--secrets-file", help="dotenv file for ${NAME} in with: and inventory passwords.")] = None,
    record: Annotated[bool, typer.Option("--record", help="Record the apply as a run in the store (runs, logs, "
                                         "retry: a retry re-plans and continues where it failed).")] = False,
) -> None:
    """Apply a playbook of idempotent operations to hosts: facts, plan, apply, rollback."""
    from worldtree.cli.main import _guard
    from worldtree.errors import UsageError

    if on_failure not in ("stop", "continue", "rollback"):
        _guard(lambda: _raise(UsageError(f"--on-failure {on_failure!r}: use stop, continue or rollback")))
    if record:
        argv = [os.path.abspath(playbook)]
        if inventory:
            argv += ["-i", os.path.abspath(inventory)]
        argv += ["--on-failure", on_failure, "--forks", str(forks)]
        argv += [flag for flag, on in (("--check", check), ("--diff", diff)) if on]
        argv += ["--limit", limit] if limit else []
        argv += ["--secrets-file", os.path.abspath(secrets_file)] if secrets_file else []
        _record(playbook, inventory, argv)
    code = _guard(lambda: asyncio.run(_apply(playbook, inventory, check=check, diff=diff, limit=limit,
                                             on_failure=on_failure, forks=forks, secrets_file=secrets_file,
                                             detailed=detailed_exitcode)))
    raise typer.Exit(code)


def _raise(error: Exception) -> None:
    raise error


def _record(playbook: str, inventory: str | None, argv: list[str]) -> None:
    """Run the apply as the one step of a stored run, so ``runs``, ``logs`` and ``retry`` work on it.

    The playbook and inventory are checked here first (a bad file is exit 2 and no run); the
    step is this same command without ``--record``, so a retry plans again from the hosts'
    state: what the failed attempt already did reports ``no change`` and the apply goes on
    from the failed operation.
    """
    import shlex
    import sys

    from worldtree.app.runs import Prepared, RunOptions, start_run
    from worldtree.cli.main import _finish, _guard, _open_store, _with_console
    from worldtree.model.graph import ExecutionGraph, Node
    from worldtree.ops.inventory import load_inventory
    from worldtree.ops.playbook import load_playbook

    book = _guard(lambda: load_playbook(playbook))
    if inventory:
        _guard(lambda: load_inventory(inventory))
    command = shlex.join([sys.executable, "-m", "worldtree.cli.main", "apply", *argv])
    node = Node(id="apply", path="apply", name="apply", job="apply", command=command)
    graph = ExecutionGraph(name=f"apply {book.name}", source=os.path.abspath(playbook), nodes=[node])
    store = _guard(_open_store)
    result = _guard(lambda: _with_console(False, lambda factory: start_run(Prepared(graph, []), store,
                                                                              RunOptions(), factory)))
    _finish(result, False)


async def _apply(playbook_path: str, inventory_path: str | None, *, check: bool, diff: bool, limit: str | None,
                 on_failure: Any, forks: int, secrets_file: str | None, detailed: bool) -> int:
    from worldtree.ops.apply import apply_plan, build_plan
    from worldtree.ops.config import load_config
    from worldtree.ops.inventory import load_inventory
    from worldtree.ops.playbook import load_playbook
    from worldtree.ops.secrets import mask

    book = load_playbook(playbook_path)
    inventory = load_inventory(inventory_path) if inventory_path else None
    env = dict(os.environ)
    if secrets_file:
        from dotenv import dotenv_values

        env.update({k: v for k, v in dotenv_values(secrets_file).items() if v is not None})
    limits = [p.strip() for p in limit.split(",") if p.strip()] if limit else None
    plan = await build_plan(book, inventory, limit=limits, env=env, config=load_config(None), forks=forks)
    values = plan.secrets.values()

    def say(text: str, nl: bool = True) -> None:
        typer.echo(mask(text, values), nl=nl)

    try:
        width = max((len(s.task.name) for s in plan.steps()), default=4)
        hwidth = max((len(h.name) for h in plan.hosts), default=4)
        say(f"PLAN {book.name}: {len(plan.hosts)} host(s), {len(book.tasks)} task(s)")
        for step in plan.steps():
            assert step.planned is not None
            say(f"  {step.host:<{hwidth}}  {step.task.name:<{width}}  {step.planned.render()}")
            if diff and step.planned.diff:
                say("".join("    " + line for line in step.planned.diff.splitlines(keepends=True)), nl=False)
        pending = plan.count("change") + plan.count("unknown")
        say(f"Plan: {plan.count('change')} to change, {plan.count('unknown')} unknown until run, "
            f"{plan.count('none')} unchanged")
        if check:
            return 3 if detailed and pending else 0
        if not pending:
            say("No changes.")
            return 0

        def show(step: Any) -> None:
            line = f"  {step.host:<{hwidth}}  {step.task.name:<{width}}  {_STATUS.get(step.status, step.status)}"
            if step.rollback:
                line = f"  {step.host:<{hwidth}}  {step.task.name:<{width}}  {step.rollback}"
            elif step.error:
                line += f": {step.error}"
            say(line)

        say("APPLY")
        outcome = await apply_plan(plan, on_failure=on_failure, forks=forks, emit=show, emit_rollback=show)
        summary = (f"Apply: {outcome.changed} changed, {outcome.ok} unchanged, {outcome.failed} failed, "
                   f"{outcome.skipped} skipped")
        if on_failure == "rollback" and outcome.failed:
            summary += f"; rollback: {outcome.rolled_back} undone, {outcome.rollback_failed} not undone"
        say(summary)
    finally:
        await plan.close()
    if outcome.failed:
        return 1
    return 3 if detailed and outcome.any_changed else 0
