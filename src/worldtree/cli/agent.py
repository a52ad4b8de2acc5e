"""``worldtree agent`` (run an agent) and ``worldtree agents`` (list a server's agents).

``worldtree agent --server HOST:PORT --token T --labels os=linux,gpu=true --capacity 4`` registers
with the server's gRPC port and runs the jobs whose label selectors match (see
:mod:`worldtree.agent.runtime`). ``worldtree agents --server URL`` lists the agents through
``GET /api/v1/agents``; without ``--server`` it reads the store (``--store``/``WORLDTREE_STORE``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from worldtree.cli.client import ClientError, TokenOpt, _fail, _request


def agent_command(
    server: Annotated[str, typer.Option("--server", envvar="WORLDTREE_GRPC_SERVER",
                                        help="The server's gRPC address HOST:PORT (its --grpc-port).")],
    token: Annotated[str | None, typer.Option("--token", envvar="WORLDTREE_TOKEN",
                                              help="A maintainer token (`worldtree token create --role "
                                                   "maintainer`); not needed with a --no-auth server.")] = None,
    labels: Annotated[str, typer.Option("--labels", envvar="WORLDTREE_AGENT_LABELS",
                                        help="This agent's labels: key=value,key=value.")] = "",
    capacity: Annotated[int, typer.Option("--capacity", envvar="WORLDTREE_AGENT_CAPACITY", min=1,
                                          help="Jobs run at once.")] = 1,
    name: Annotated[str | None, typer.Option("--name",
                                             help="Shown in `worldtree agents` (default: host name).")] = None,
    workdir: Annotated[str, typer.Option("--workdir", envvar="WORLDTREE_AGENT_WORKDIR",
                                         help="Where job workspaces are made.")] = ".worldtree-agent",
    tls: Annotated[bool, typer.Option("--tls", help="Connect with TLS (the server's --grpc-tls-cert).")] = False,
    ca: Annotated[str | None, typer.Option("--ca", help="PEM CA bundle that signed the server's certificate.")] = None,
) -> None:
    """Register with a worldtree server and run the jobs whose label selectors match this agent."""
    from worldtree.agent.runtime import AgentConfig, run_agent
    from worldtree.model.labels import parse_labels

    try:
        parsed = parse_labels(labels)
    except ValueError as exc:
        typer.echo(f"error: --labels {labels!r}: {exc}; write key=value,key=value", err=True)
        raise typer.Exit(2) from None
    if ":" not in server or server.startswith(("http://", "https://")):
        typer.echo(f"error: --server {server!r}: expected the gRPC address HOST:PORT (the server's --grpc-port, "
                   "default 9090), not a URL", err=True)
        raise typer.Exit(2)
    code = run_agent(AgentConfig(server=server, token=token, labels=parsed, capacity=capacity, name=name,
                                 workdir=workdir, tls=tls or bool(ca), ca_file=ca))
    raise typer.Exit(code)


def agents_list(server: str | None, token: str | None, store: str | None, as_json: bool) -> None:
    try:
        items = _remote(server, token) if server else _local(store)
    except ClientError as exc:
        _fail(exc)
        return
    if as_json:
        typer.echo(json.dumps(items, indent=2))
        return
    if not items:
        typer.echo("no agents registered")
        return
    width = max(len(a["name"]) for a in items)
    for a in items:
        labels = ",".join(f"{k}={v}" for k, v in sorted(a["labels"].items())) or "-"
        status = a["status"] + (" (draining)" if a["draining"] else "")
        cpu = a.get("metrics", {}).get("cpu_percent")
        typer.echo(f"{a['id']}  {a['name']:<{width}}  {status:<8}  {a['running']}/{a['capacity']}  {labels}"
                   + (f"  cpu {cpu:.0f}%" if isinstance(cpu, int | float) else "") + f"  last seen {a['last_seen']}")


def _remote(server: str, token: str | None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = _request("GET", server, "/api/v1/agents", token).json()["items"]
    return items


def _local(store_url: str | None) -> list[dict[str, Any]]:
    from worldtree.app.agents import list_agents
    from worldtree.errors import WorldtreeError
    from worldtree.store import open_store

    if not store_url:
        raise ClientError("give --server URL (a worldtree server) or --store URL (its run store)", code=2)
    try:
        store = open_store(store_url)
        try:
            return list_agents(store)
        finally:
            store.close()
    except WorldtreeError as exc:
        raise ClientError(str(exc)) from None


def register(agents_app: typer.Typer) -> None:
    """``worldtree agents`` lists (also as ``agents list``); ``agents explain`` stays where it is."""
    agents_app.info.no_args_is_help = False
    agents_app.info.invoke_without_command = True

    @agents_app.callback()
    def agents(ctx: typer.Context,
               server: Annotated[str | None, typer.Option("--server", envvar="WORLDTREE_SERVER",
                                                          help="The server's base URL.")] = None,
               token: TokenOpt = None,
               store: Annotated[str | None, typer.Option("--store", envvar="WORLDTREE_STORE",
                                                         help="Run store URL when no --server is given.")] = None,
               as_json: Annotated[bool, typer.Option("--json", help="As JSON.")] = False) -> None:
        """Agents of a worldtree server: list them (no subcommand), or explain why a job waits."""
        if ctx.invoked_subcommand is None:
            agents_list(server, token, store, as_json)

    @agents_app.command("list")
    def list_command(server: Annotated[str | None, typer.Option("--server", envvar="WORLDTREE_SERVER",
                                                                help="The server's base URL.")] = None,
                     token: TokenOpt = None,
                     store: Annotated[str | None, typer.Option("--store", envvar="WORLDTREE_STORE",
                                                               help="Run store URL when no --server is given.")] = None,
                     as_json: Annotated[bool, typer.Option("--json", help="As JSON.")] = False) -> None:
        """List agents: status, running/capacity, labels, last heartbeat."""
        agents_list(server, token, store, as_json)
