"""``worldtree stack``: validate, plan and apply StackFlow stacks (a thin client of worldtree.stack)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

stack_app = typer.Typer(help="StackFlow stacks: validate, plan dns/iac/deploy/observe, gated apply through plugins.",
                        no_args_is_help=True)

StackFile = Annotated[str, typer.Argument(help="StackFlow v1alpha1 YAML file.")]
EnvOpt = Annotated[str, typer.Option("--env", help="Shallow-merge global.environments.<env> into global.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Directory for the stackflow.*.json files and the summary.")]
PhaseArg = Annotated[str, typer.Argument(help="dns, iac, deploy, observe or all.")]


def _guard(fn: Any) -> Any:
    from worldtree.cli.main import _guard as guard

    return guard(fn)


@stack_app.command("validate")
def validate_cmd(file: StackFile, env: EnvOpt = "", out: OutOpt = Path(".")) -> None:
    """Check a stack; writes stackflow.validate.json ({ok, stack, domain, dns_provider, cloud, targets, env})."""
    from worldtree.errors import SpecError
    from worldtree.stack import artifacts, load_stack
    from worldtree.stack.service import validation_result

    def run() -> dict[str, Any]:
        try:
            result = validation_result(load_stack(file, env))
        except SpecError as exc:
            artifacts.write_json(artifacts.validate_path(out), {"ok": False, "env": env.strip(),
                                                                "errors": [d.as_dict() for d in exc.diagnostics]})
            raise
        artifacts.write_json(artifacts.validate_path(out), result)
        return result

    typer.echo(json.dumps(_guard(run), indent=2))


def _store(ctx: typer.Context) -> Any:
    """The run store of the root ``--store`` (read from the context: under ``python -m`` the
    module state of ``worldtree.cli.main`` is a second, unset copy)."""
    from worldtree.store import open_store

    return _guard(lambda: open_store(ctx.find_root().params.get("store")))


def _skills(store: Any) -> list[dict[str, Any]]:
    """./skills and the synced sources, as plain data for citing (never executed)."""
    from worldtree.skills import load_skills
    from worldtree.store.server_data import engine_of
    from worldtree.store.stacks import StackRows

    return [s.summary() for s in _guard(lambda: load_skills(Path("."), StackRows(engine_of(store))))]


@stack_app.command("plan")
def plan_cmd(
    ctx: typer.Context,
    phase: PhaseArg,
    file: StackFile,
    env: EnvOpt = "",
    out: OutOpt = Path("."),
    refine: Annotated[bool, typer.Option(
        "--refine", help="Also ask each phase's plugins (their plan subcommand, with their credentials) what "
                         "would change at the provider; written to stackflow.<phase>-changes.json.")] = False,
    plugins_dir: Annotated[Path, typer.Option("--plugins-dir", help="Searched before $PATH.")] = Path("plugins"),
    plugin_timeout: Annotated[float, typer.Option("--plugin-timeout", help="Seconds per plugin call.")] = 600.0,
) -> None:
    """Write stackflow.<phase>-plan.json and stackflow.summary.md (no credentials needed).

    Plans are digested against the state applies recorded in the run store (--store). The
    summary is also appended to $GITHUB_STEP_SUMMARY when it is set.
    """
    from worldtree.stack import artifacts, load_stack
    from worldtree.stack.apply import ApplyOptions
    from worldtree.stack.service import write_plans

    options = None if not refine else ApplyOptions(
        plugins_dir=plugins_dir, timeout=plugin_timeout, on_log=lambda line: typer.echo(f"[plugin] {line}", err=True))
    loaded = _guard(lambda: load_stack(file, env))
    store = _store(ctx)
    try:
        skills = _skills(store)
        plans = _guard(lambda: write_plans(loaded, phase, out, options, store, skills))
    finally:
        store.close()
    for name in plans:
        typer.echo(str(artifacts.plan_path(out, name)))
    typer.echo(str(out / artifacts.SUMMARY_FILE))


@stack_app.command("apply")
def apply_cmd(
    ctx: typer.Context,
    phase: PhaseArg,
    file: StackFile,
    plan: Annotated[Path, typer.Option("--plan", help="Directory holding the reviewed plans (plan --out).")],
    env: EnvOpt = "",
    approve: Annotated[bool, typer.Option("--approve", help="Approve without asking.")] = False,
    allow_dangerous: Annotated[bool, typer.Option("--allow-dangerous",
                                                  help="Allow changes a plugin marks dangerous.")] = False,
    plugins_dir: Annotated[Path, typer.Option("--plugins-dir", help="Searched before $PATH.")] = Path("plugins"),
    plugin_timeout: Annotated[float, typer.Option("--plugin-timeout", help="Seconds per plugin call.")] = 600.0,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1,
                                             help="Plugins of one phase applied at once.")] = 4,
) -> None:
    """Apply reviewed plans through exec plugins, after approval, refusing stale plans.

    The apply is recorded as a run in the run store (--store): `worldtree runs` and `logs` show it;
    the applied state is kept there per stack, env and phase, and a plan made against another
    state is refused.

    Approval: --approve, WORLDTREE_APPLY_APPROVED=1 (set by a gated CI environment), or "yes" at
    the prompt when stdin is a terminal.
    """
    from worldtree.stack import load_stack
    from worldtree.stack.apply import ApplyOptions, apply_plans

    loaded = _guard(lambda: load_stack(file, env))
    approved = approve or os.environ.get("WORLDTREE_APPLY_APPROVED", "") == "1"
    if not approved and sys.stdin.isatty():
        approved = typer.confirm(f"Apply {phase} of stack {loaded.stack.name}"
                                 f"{' env ' + loaded.env if loaded.env else ''} from {plan}?", default=False)
    store = _store(ctx) if approved else None  # recorded as a run; nothing to record when refused
    options = ApplyOptions(approved=approved, allow_dangerous=allow_dangerous, plugins_dir=plugins_dir, store=store,
                           timeout=plugin_timeout, concurrency=concurrency,
                           on_log=lambda line: typer.echo(f"[plugin] {line}", err=True))
    try:
        results = _guard(lambda: apply_plans(loaded, phase, plan, options))
    finally:
        if store is not None:
            store.close()
    typer.echo(json.dumps(results, indent=2))
    raise typer.Exit(0 if all(r["ok"] for r in results.values()) else 1)


@stack_app.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of a StackFlow stack document."""
    from worldtree.stack import stack_json_schema

    typer.echo(json.dumps(stack_json_schema(), indent=2))


@stack_app.command("agent")
def agent_cmd(
    ctx: typer.Context,
    config: Annotated[Path, typer.Option("--config", help="The StackFlow file to watch.")],
    env: EnvOpt = "",
    interval: Annotated[str, typer.Option("--interval", help="Time between ticks: seconds, or 30s, 10m, 1h.")] = "10m",
    once: Annotated[bool, typer.Option("--once", help="One tick, then exit.")] = False,
    out: Annotated[Path, typer.Option("--out", help="Where each tick writes its plans.")] = Path(".worldtree/agent"),
    dangerously_allow_apply: Annotated[bool, typer.Option(
        "--dangerously-allow-apply",
        help="Apply drift when this agent holds the lease and WORLDTREE_APPLY_APPROVED=1 is set.")] = False,
    plugins_dir: Annotated[Path, typer.Option("--plugins-dir", help="Searched before $PATH.")] = Path("plugins"),
    plugin_timeout: Annotated[float, typer.Option("--plugin-timeout", help="Seconds per plugin call.")] = 600.0,
    name: Annotated[str, typer.Option("--name", help="This agent's name in the lease (default host:pid).")] = "",
) -> None:
    """Watch a stack: every tick validate, plan, detect drift, remember it in the store (--store);
    the lease holder applies drift when allowed. Several agents may share one store."""
    import signal
    import threading

    from worldtree.stack.agent import AgentOptions, parse_interval, run_agent
    from worldtree.stack.state import holder_name

    seconds = _guard(lambda: parse_interval(interval))
    store = _store(ctx)
    options = AgentOptions(config=config, env=env, interval=seconds, out=out, allow_apply=dangerously_allow_apply,
                           plugins_dir=plugins_dir, plugin_timeout=plugin_timeout, holder=name or holder_name(),
                           skills=lambda: _skills(store), on_log=lambda line: typer.echo(line, err=True))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        result = _guard(lambda: run_agent(store, options, stop, once=once))
    finally:
        store.close()
    typer.echo(json.dumps({k: v for k, v in result.items() if k != "token"}, indent=2))
    raise typer.Exit(0 if result.get("ok") else 1)
