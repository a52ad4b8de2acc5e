"""``worldtree agents explain JOB_ID``: why a job is pending, agent by agent.

With ``--server URL`` it asks ``GET /api/v1/jobs/{id}/explain``; without, it reads the store
itself (``--store`` or ``WORLDTREE_STORE``: the server's store, when run beside it). Both print the
same lines, made by :mod:`worldtree.app.explain`.

This module owns only the ``explain`` command; :func:`register` adds it to the ``agents`` group,
which the agents CLI owns (``agents_app`` below stands in for it until that exists).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from worldtree.cli.client import ClientError, TokenOpt, _fail

agents_app = typer.Typer(help="Agents of a worldtree server: why a job waits for one.", no_args_is_help=True)

JobIdArg = Annotated[str, typer.Argument(help="RUN_ID:JOB (JOB: a job name or its stage/job path), or an agent "
                                              "job id.")]
OptionalServer = Annotated[str | None, typer.Option("--server", envvar="WORLDTREE_SERVER",
                                                    help="The server's base URL; without it, read the store.")]
StoreOpt = Annotated[str | None, typer.Option("--store", envvar="WORLDTREE_STORE",
                                              help="Run store URL when no --server is given.")]


def explain_command(job_id: JobIdArg, server: OptionalServer = None, token: TokenOpt = None, store: StoreOpt = None,
                    as_json: Annotated[bool, typer.Option("--json", help="The explanation as JSON.")] = False) -> None:
    """List every agent with the first reason it cannot run the job (`gpu: missing`,
    `cpu-cores: 4 is not > 8`, `busy 4/4`, `offline since …`) or `matches`, and a summary."""
    try:
        data = _remote(server, job_id, token) if server else _local(store, job_id)
    except ClientError as exc:
        _fail(exc)
        return
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    typer.echo(f"job {data['job_id']}: {data['state']}; agents: {data['selector_text'] or 'any (no label selector)'}")
    typer.echo(f"  {data['summary']}")
    width = max((len(a["agent"]) for a in data["agents"]), default=0)
    for line in data["agents"]:
        typer.echo(f"  {line['agent']:<{width}}  {line['reason']}")


def _remote(server: str, job_id: str, token: str | None) -> dict[str, Any]:
    """``GET /api/v1/jobs/{id}/explain`` through the HTTP client MCP uses too (``app.remote``)."""
    from worldtree.app.remote import RemoteRuns
    from worldtree.errors import UsageError, WorldtreeError

    try:
        remote = RemoteRuns(server, token)
    except UsageError as exc:
        raise ClientError(str(exc), 2) from None
    try:
        return remote.explain_job(job_id)
    except WorldtreeError as exc:
        raise ClientError(str(exc), exc.exit_code) from None
    finally:
        remote.close()


def _local(store_url: str | None, job_id: str) -> dict[str, Any]:
    from worldtree.app.explain import explain
    from worldtree.errors import WorldtreeError
    from worldtree.store import open_store

    try:
        store = open_store(store_url)
        try:
            return explain(store, job_id)
        finally:
            store.close()
    except WorldtreeError as exc:
        raise ClientError(str(exc), exc.exit_code) from None


def register(group: typer.Typer) -> None:
    """Add ``explain`` to the ``agents`` command group."""
    group.command("explain")(explain_command)


register(agents_app)
