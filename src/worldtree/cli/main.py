"""``worldtree`` command line: a thin client of ``worldtree.app``.

Only this package renders errors: ``file:line:col: message`` for bad input (exit 2), one line
for other failures (exit 1), a traceback only with ``--debug``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import time
from collections.abc import Callable

if __name__ == "__main__":  # pragma: no cover
    # ``python -m worldtree.cli.main``: one module, not two. Subcommand modules import this one
    # by name (``_open_store``, the root options); without the alias they would get a second copy
    # whose root ``--store`` was never set.
    sys.modules.setdefault("worldtree.cli.main", sys.modules[__name__])
from typing import Annotated, Any, TypeVar

import typer

from worldtree import __version__
from worldtree.cli.agent import agent_command
from worldtree.cli.agent import register as register_agents
from worldtree.cli.agents_explain import agents_app
from worldtree.cli.apply import apply as apply_command
from worldtree.cli.argo import argo_app
from worldtree.cli.artifacts import artifacts_app
from worldtree.cli.client import client_app
from worldtree.cli.mcp import mcp_command
from worldtree.cli.repo import repo_app
from worldtree.cli.secret import secret_app
from worldtree.cli.server import server_app, token_app
from worldtree.cli.skills import skills_app
from worldtree.cli.stack import stack_app

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Run declarative pipelines the same way on a laptop, a fleet of agents, or Kubernetes.")
runs_app = typer.Typer(help="List runs, or show one.", invoke_without_command=True, no_args_is_help=False)
app.add_typer(runs_app, name="runs")
app.command("apply")(apply_command)
app.add_typer(server_app, name="server")
app.add_typer(client_app, name="client")
app.add_typer(token_app, name="token")
app.add_typer(stack_app, name="stack")
app.add_typer(skills_app, name="skills")
app.command("mcp")(mcp_command)
app.add_typer(argo_app, name="argo")
app.add_typer(artifacts_app, name="artifacts")
app.add_typer(secret_app, name="secret")
app.add_typer(repo_app, name="repo")
register_agents(agents_app)  # `worldtree agents` lists; `agents explain` is its own module
app.add_typer(agents_app, name="agents")  # `agents explain`; the agents CLI adds its commands to it
app.command("agent")(agent_command)  # `worldtree agent --server HOST:PORT`: run an agent

_state: dict[str, Any] = {"debug": False, "store": None}
T = TypeVar("T")


@app.callback()
def _main(
    store: Annotated[str | None, typer.Option("--store", envvar="WORLDTREE_STORE",
                                              help="Run store URL (sqlite:///… or postgresql+psycopg://…).")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        typer.echo(f"worldtree {__version__}")
        raise typer.Exit(0)
    _state["debug"] = debug
    _state["store"] = store


def _guard(fn: Callable[[], T]) -> T:
    """Run a command body, turning worldtree's errors into messages and exit codes."""
    from worldtree.errors import SpecError, WorldtreeError

    try:
        return fn()
    except SpecError as exc:
        for diag in exc.diagnostics:
            typer.echo(diag.render(), err=True)
        raise typer.Exit(2) from None
    except WorldtreeError as exc:
        if _state["debug"]:
            raise
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _fail(error: Exception) -> None:
    """Render ``error`` the way _guard does and exit."""

    def raise_it() -> None:
        raise error

    _guard(raise_it)


def _print_warnings(warnings: list[Any]) -> None:
    for diag in warnings:
        typer.echo(diag.render(), err=True)


def _open_store() -> Any:
    from worldtree.store import open_store

    return open_store(_state["store"])


def _parse_env(pairs: list[str]) -> dict[str, str]:
    from worldtree.errors import UsageError

    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--env {pair!r}: write NAME=value")
        env[name] = value
    return env


FileArg = Annotated[str, typer.Argument(help="Pipeline file (seed 003 stages shape or a seed 002 jobs map).")]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Unknown keys are errors, not warnings.")]


@app.command()
def validate(file: FileArg, strict: StrictOpt = False) -> None:
    """Load and check a pipeline; prints nothing but warnings when it is valid."""
    from worldtree.app import op_checks  # noqa: F401  (checks `op:` steps while loading, lazily)
    from worldtree.compile.loader import load_pipeline

    loaded = _guard(lambda: load_pipeline(file, strict=strict))
    _print_warnings(loaded.warnings)


@app.command()
def plan(
    file: FileArg,
    as_json: Annotated[bool, typer.Option("--json", help="The execution graph as JSON.")] = False,
    env: Annotated[list[str], typer.Option("--env", help="NAME=value, over every level of the file.")] = [],  # noqa: B006
    strict: StrictOpt = False,
) -> None:
    """Show the compiled execution graph: nodes, edges, resolved env, timeouts, targets."""
    from worldtree.app.runs import RunOptions, prepare
    from worldtree.model.timeouts import static_limit

    prepared = _guard(lambda: prepare(file, RunOptions(env=_guard(lambda: _parse_env(env)), strict=strict)))
    _print_warnings(prepared.warnings)
    graph = prepared.graph
    from worldtree.app.secrets import literal_credentials
    from worldtree.engine.masking import Masker

    masker = Masker(literal_credentials(graph))
    def limit(node: Any) -> tuple[float, str] | None:
        """What stops the node (the one resolver the engine uses), or None when no level sets a limit."""
        if node.timeout is None and not any(graph.scopes[s].timeout for s in node.scopes if s in graph.scopes):
            return None
        found = static_limit(graph, node)
        return found.at, found.level

    if as_json:
        data = json.loads(graph.model_dump_json())
        for item, node in zip(data["nodes"], graph.nodes, strict=True):
            found = limit(node)
            item["effective_timeout"] = None if found is None else {"seconds": found[0], "level": found[1]}
        typer.echo(masker.mask(json.dumps(data, indent=2)))
        return

    def echo(text: str) -> None:  # plan loads no secrets; credentials written in the file are masked
        typer.echo(masker.mask(text))

    echo(f"pipeline {graph.name}: {len(graph.nodes)} nodes, {len(graph.edges())} edges, "
         f"on_failure={graph.on_failure}")
    for node in graph.nodes:
        timeout = limit(node)
        echo(f"- {node.id}  [{node.target.kind}]  {node.path}")
        echo(f"    command: {node.command.strip()}" if "\n" not in node.command.strip()
             else "    command: |\n" + "\n".join("      " + line for line in node.command.strip().splitlines()))
        if node.needs:
            echo(f"    needs: {', '.join(node.needs)}")
        if timeout is not None:
            echo(f"    timeout: {timeout[0]:g}s ({timeout[1]})")
        if node.env:
            echo("    env: " + ", ".join(f"{k}={v}" for k, v in sorted(node.env.items())))
        if node.secrets:
            echo(f"    secrets: {', '.join(node.secrets)}")
        if node.selector is not None:
            echo(f"    agents: {node.selector.describe()}")
        if node.target.server:
            echo(f"    server: {node.target.server}" + (" (TLS)" if node.target.tls else ""))
        extras = [f"retry={node.retry.max}" if node.retry.max else "", "allow_failure" if node.allow_failure else "",
                  f"when={node.when}" if node.when != "on_success" else "",
                  f"if={node.condition}" if node.condition else "",
                  "precheck" if node.precheck else "", "rollback" if node.rollback else ""]
        if any(extras):
            echo("    " + " ".join(e for e in extras if e))


@app.command()
def graph(
    file: FileArg,
    fmt: Annotated[str, typer.Option("--format", help="mermaid | dot | tree")] = "tree",
) -> None:
    """Print the DAG as text."""
    from worldtree.app.runs import RunOptions, prepare
    from worldtree.cli import graph_text
    from worldtree.errors import UsageError

    renderers = {"mermaid": graph_text.to_mermaid, "dot": graph_text.to_dot, "tree": graph_text.to_tree}
    if fmt not in renderers:
        _fail(UsageError(f"--format {fmt!r}: use mermaid, dot or tree"))
    prepared = _guard(lambda: prepare(file, RunOptions()))
    _print_warnings(prepared.warnings)
    typer.echo(renderers[fmt](prepared.graph), nl=False)


@app.command()
def run(
    file: FileArg,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-j", min=1,
                                                     help="Nodes at once (default: CPU count).")] = None,
    env: Annotated[list[str], typer.Option("--env", help="NAME=value, over every level of the file.")] = [],  # noqa: B006
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line on stdout.")] = False,
    workdir: Annotated[str | None, typer.Option("--workdir", help="Run in this directory.")] = None,
    secrets_file: Annotated[str | None, typer.Option("--secrets-file", help="dotenv file of secret values.")] = None,
    inventory: Annotated[str | None, typer.Option("--inventory", "-i", help="Inventory for `hosts:` jobs.")] = None,
    allow_env: Annotated[list[str], typer.Option("--allow-env", help="Host variable containers may see.")] = [],  # noqa: B006
    allow_all_env: Annotated[bool, typer.Option("--allow-all-env", help="Containers see the host's env.")] = False,
    config: Annotated[str | None, typer.Option("--config", help="worldtree config file (runner sizes, "
                                               "language images); default $WORLDTREE_CONFIG or ./worldtree.yaml")
                      ] = None,
    strict: StrictOpt = False,
) -> None:
    """Run a pipeline on this machine."""
    from worldtree.app.runs import RunOptions, prepare, start_run
    from worldtree.errors import UsageError

    if workdir is not None and os.path.lexists(workdir) and not os.path.isdir(workdir):
        _fail(UsageError(f"--workdir {workdir}: exists and is not a directory; name a directory (it is created "
                         "if missing)"))
    options = RunOptions(concurrency=concurrency, env=_guard(lambda: _parse_env(env)), workdir=workdir,
                         secrets_file=secrets_file, strict=strict, allow_env=allow_env,
                         allow_all_env=allow_all_env, inventory=inventory, config_path=config)
    prepared = _guard(lambda: prepare(file, options))
    _print_warnings(prepared.warnings)
    store = _guard(_open_store)
    result = _guard(lambda: _with_console(as_json, lambda factory: start_run(prepared, store, options, factory)))
    _finish(result, as_json)


@app.command()
def retry(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-j", min=1)] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    secrets_file: Annotated[str | None, typer.Option("--secrets-file")] = None,
) -> None:
    """Run a new attempt: only what failed, was cancelled, timed out or never ran, and what depends on it."""
    from worldtree.app.runs import RunOptions, retry_run

    options = RunOptions(concurrency=concurrency, secrets_file=secrets_file)
    store = _guard(_open_store)
    result = _guard(lambda: _with_console(as_json, lambda factory: retry_run(run_id, store, options, factory)))
    _finish(result, as_json)


@app.command()
def cancel(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    reason: Annotated[str, typer.Option("--reason", help="Recorded as the nodes' error.")] = "cancelled by user",
) -> None:
    """Cancel a running run: the request is stored, and the process running it stops it within a second."""
    from worldtree.app.runs import cancel_run

    store = _guard(_open_store)
    full_id = _guard(lambda: cancel_run(run_id, store, reason))
    typer.echo(f"cancel requested for run {full_id}")


def _with_console(as_json: bool, body: Callable[[Any], Any]) -> Any:
    """Pick the console for this terminal and run ``body(listener_factory)`` inside it."""
    from worldtree.cli.console import JsonConsole, PlainConsole

    live_holder: list[Any] = []

    def factory(run_id: str, attempt: int, graph: Any, masker: Any) -> Any:
        if as_json:
            console = JsonConsole(masker=masker)
            console.write(json.dumps({"event": "run", "run_id": run_id, "attempt": attempt,
                                       "name": graph.name, "nodes": len(graph.nodes)}) + "\n", flush=True)
            return console
        if sys.stdout.isatty():
            from worldtree.cli.live import LiveConsole

            live = LiveConsole(graph, masker=masker)
            live.console.print(f"run [bold]{run_id}[/bold] attempt {attempt}: {graph.name}")
            live.__enter__()
            live_holder.append(live)
            return live
        plain = PlainConsole(graph, masker=masker)
        plain.write(f"run {run_id} attempt {attempt}: {graph.name}\n")
        return plain

    try:
        return body(factory)
    finally:
        for live in live_holder:
            live.__exit__(None, None, None)
        with contextlib.suppress(OSError):  # the reader may be gone (`| head`); the run is recorded
            sys.stdout.flush()


def _finish(result: Any, as_json: bool) -> None:
    with contextlib.suppress(OSError):  # a closed stdout must not change the exit code
        if as_json:
            typer.echo(json.dumps({"event": "run_finished", "run_id": result.run_id, "attempt": result.attempt,
                                   "state": result.state.value}))
        else:
            counts: dict[str, int] = {}
            for state in result.nodes.values():
                counts[state.value] = counts.get(state.value, 0) + 1
            summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            typer.echo(f"run {result.run_id} {result.state.value} ({summary})", err=not sys.stdout.isatty())
    with contextlib.suppress(OSError):
        if result.fault:  # worldtree itself broke: never quietly
            typer.echo(f"worldtree: error: {result.fault}; the run ended as `error` (retry it with "
                       f"`worldtree retry {result.run_id}`)", err=True)
        if result.kept_workdir:
            typer.echo(f"workdir kept for `worldtree retry {result.run_id}`: {result.kept_workdir}", err=True)
    raise typer.Exit(result.exit_code)


@runs_app.callback()
def runs_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Runs, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    from worldtree.cli import run_view

    store = _guard(_open_store)
    records = _guard(lambda: store.list_runs(limit))
    if as_json:
        typer.echo(json.dumps([_run_json(r) for r in records], indent=2))
        return
    if not records:
        typer.echo("no runs yet; start one with `worldtree run FILE`")
        return
    for r in records:
        shown = run_view.duration(r.started_at, r.finished_at, interrupted=r.state == run_view.INTERRUPTED,
                                  last_seen=r.last_seen)
        typer.echo(f"{r.run_id}  {r.state:<11}  attempt {r.attempt}  {_fmt_time(r.created_at)}  "
                   f"{shown:>11}  {r.name}")


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One run: its state, attempts and every node."""
    from worldtree.cli import run_view
    from worldtree.errors import UsageError

    store = _guard(_open_store)

    def load() -> Any:
        record = store.get_run(run_id)
        if record is None:
            raise UsageError(f"no run {run_id!r}; `worldtree runs` lists them")
        return record

    record = _guard(load)
    if as_json:
        typer.echo(json.dumps(_run_json(record, nodes=True), indent=2))
        return
    took = run_view.duration(record.started_at, record.finished_at,
                             interrupted=record.state == run_view.INTERRUPTED, last_seen=record.last_seen)
    typer.echo(f"run {record.run_id}: {record.name}\n  state: {record.state}\n  attempt: {record.attempt}\n"
               f"  source: {record.source}\n  workdir: {record.workdir}\n  created: {_fmt_time(record.created_at)}\n"
               f"  duration: {took}")
    @functools.cache
    def earlier(attempt: int) -> list[Any]:
        return list(store.node_records(record.run_id, attempt))

    for n in record.nodes:
        origin = _guard(functools.partial(run_view.reused_from, n, earlier))
        typer.echo(run_view.node_line(record, n, origin))


@app.command()
def logs(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    node: Annotated[str | None, typer.Option("--node", help="A node id or path, or a job's prefix.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing while the run is live.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    raw: Annotated[bool, typer.Option("--raw", help="Print output as stored, terminal escape sequences "
                                      "included (they are stripped, colours aside, by default).")] = False,
) -> None:
    """Print a run's output, whole or for one node; a line marks where each attempt starts."""
    from worldtree.cli.run_view import LogPrinter
    from worldtree.errors import UsageError

    store = _guard(_open_store)
    record = _guard(lambda: store.get_run(run_id))
    if record is None:
        _fail(UsageError(f"no run {run_id!r}; `worldtree runs` lists them"))
    node_id = _resolve_node(record, node) if node else None
    printer = LogPrinter(record, node_id, raw)
    after = 0
    while True:
        lines = _guard(functools.partial(store.logs, record.run_id, node=node_id, after_seq=after))
        for line in lines:
            if as_json:
                typer.echo(json.dumps({**line.as_json(), "seq": line.seq}))
            else:
                for text in printer.lines(line):
                    typer.echo(text, color=True)  # as stored (--raw) or sanitized: click must not strip more
            after = max(after, line.seq)
        if not follow:
            return
        current = store.get_run(record.run_id)
        if not lines and (current is None or current.state != "running"):
            return
        if not lines:
            time.sleep(0.2)


def _resolve_node(record: Any, node: str) -> str:
    from worldtree.model.graph import ExecutionGraph

    if not record.graph_json:
        return node
    graph = ExecutionGraph.model_validate_json(record.graph_json)
    for n in graph.nodes:
        if node in (n.id, n.path):
            return n.id
    return node.strip("/")


@app.command()
def facts(
    names: Annotated[list[str], typer.Argument(help="Inventory host or group names.")],
    inventory: Annotated[str, typer.Option("--inventory", "-i", help="Inventory file.")] = "inventory.yaml",
    as_json: Annotated[bool, typer.Option("--json")] = False,
    secrets_file: Annotated[str | None, typer.Option("--secrets-file", help="dotenv file for ${NAME} passwords.")
                            ] = None,
) -> None:
    """Gather OS, kernel, architecture, CPUs, memory and hostname of hosts, concurrently over SSH."""
    import asyncio

    from worldtree.errors import UsageError

    def gather() -> dict[str, dict[str, Any]]:
        from worldtree.ops.config import load_config
        from worldtree.ops.facts.host import gather_facts
        from worldtree.ops.inventory import load_inventory

        inv = load_inventory(inventory)
        env = dict(os.environ)
        if secrets_file:
            from dotenv import dotenv_values

            env.update({k: v for k, v in dotenv_values(secrets_file).items() if v is not None})
        try:
            return asyncio.run(gather_facts(inv, names, env=env, config=load_config(None)))
        except KeyError as exc:
            raise UsageError(str(exc.args[0]) if exc.args else str(exc)) from None

    result = _guard(gather)
    if as_json:
        typer.echo(json.dumps(result, indent=2, sort_keys=True))
    else:
        for host, values in sorted(result.items()):
            if "error" in values:
                typer.echo(f"{host}: error: {values['error']}")
                continue
            shown = ", ".join(f"{k}={v}" for k, v in sorted(values.items()))
            typer.echo(f"{host}: {shown}")
    raise typer.Exit(1 if any("error" in v for v in result.values()) else 0)


@app.command()
def schema(stack: Annotated[bool, typer.Option("--stack", help="The stack (StackFlow) document's schema instead.")]
           = False) -> None:
    """Print the JSON Schema of the pipeline document, or with --stack of the stack document (for editors)."""
    if stack:
        from worldtree.stack import stack_json_schema

        typer.echo(json.dumps(stack_json_schema(), indent=2))
        return
    from worldtree.model.spec import pipeline_json_schema

    typer.echo(json.dumps(pipeline_json_schema(), indent=2))


def _run_json(r: Any, nodes: bool = False) -> dict[str, Any]:
    out = {"run_id": r.run_id, "name": r.name, "state": r.state, "attempt": r.attempt, "source": r.source,
           "workdir": r.workdir, "created_at": _iso(r.created_at), "started_at": _iso(r.started_at),
           "finished_at": _iso(r.finished_at)}
    if nodes:
        from worldtree.cli.run_view import node_state

        out["nodes"] = [{"node": n.node, "state": node_state(r, n), "attempt": n.attempt,
                         "started_at": _iso(n.started_at), "finished_at": _iso(n.finished_at),
                         "exit_code": n.exit_code, "error": n.error,
                         "reason": n.reason, "try": n.try_number} for n in r.nodes]
    return out


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _fmt_time(value: Any) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def main() -> None:
    """Entry point; keeps tracebacks away from users unless --debug.

    Ends with ``os._exit`` once output is flushed: everything worth keeping is committed to the
    store by then, and the interpreter's own teardown (module cleanup, closing SQLite's last WAL
    connection, which checkpoints and syncs) would add ~60 ms to every command.
    """
    code: int | str | None = 0
    try:
        app()
    except SystemExit as exc:
        code = exc.code
    except Exception as exc:  # pragma: no cover - last resort
        if "--debug" in sys.argv or os.environ.get("WORLDTREE_DEBUG"):
            raise
        typer.echo(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)", err=True)
        code = 1
    if isinstance(code, str):
        typer.echo(code, err=True)
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, OSError):
        pass
    os._exit(code or 0)


if __name__ == "__main__":  # pragma: no cover
    main()
