"""``worldtree mcp``: serve MCP over stdio or HTTP (a leaf: the server lives in worldtree.mcp)."""

from __future__ import annotations

import os
from typing import Annotated

import typer


def mcp_command(
    ctx: typer.Context,
    dangerously_allow_apply: Annotated[bool, typer.Option(
        "--dangerously-allow-apply", help="Let MCP clients apply plans (every call is audited on stderr).")] = False,
    http: Annotated[str, typer.Option(
        "--http", help="Serve streamable HTTP at HOST:PORT (path /mcp) instead of stdio; "
                       "clients need the bearer token in $WORLDTREE_MCP_TOKEN.")] = "",
    server_url: Annotated[str, typer.Option(
        "--server", envvar="WORLDTREE_SERVER",
        help="Run the pipeline tools (runs.*) on this worldtree server instead of the local store.")] = "",
    token: Annotated[str | None, typer.Option(
        "--token", envvar="WORLDTREE_TOKEN", help="API token for --server (`worldtree token create`).")] = None,
    allow_local_runs: Annotated[bool, typer.Option(
        "--allow-local-runs", help="Without --server: let MCP clients run pipelines on this machine "
                                   "(runs.submit, runs.retry).")] = False,
    artifacts: Annotated[str, typer.Option(
        "--artifacts", help="Directory whose stackflow.* files are served as resources (plan --out).")] = ".",
) -> None:
    """Serve the StackFlow and pipeline tools to an AI assistant (Model Context Protocol).

    Without --server, submitted pipelines run in this process on the run store (--store), as
    `worldtree server` would run them; with it, every runs.* tool is a call of that server's API.
    """
    from worldtree.errors import UsageError
    from worldtree.mcp import build_server
    from worldtree.mcp.http import TOKEN_ENV, serve_http
    from worldtree.mcp.pipelines import LazyRuns, Runs

    def open_runs() -> Runs:
        if server_url:
            from worldtree.app.remote import RemoteRuns

            return RemoteRuns(server_url, token)
        from worldtree.app.local_runs import LocalRuns
        from worldtree.store import open_store

        # the root's --store, read from the context: under `python -m worldtree.cli.main` the
        # module-level state of `worldtree.cli.main` is a second, unset copy
        return LocalRuns(open_store(ctx.find_root().params.get("store")), os.path.abspath(".worldtree"))

    runs = LazyRuns(open_runs, may_run=bool(server_url) or allow_local_runs)
    server = build_server(allow_apply=dangerously_allow_apply, runs=runs, artifacts_dir=artifacts)
    host, sep, port = http.rpartition(":")
    mcp_token = os.environ.get(TOKEN_ENV, "")

    def check() -> None:
        if server_url and not server_url.startswith(("http://", "https://")):
            raise UsageError(f"--server {server_url!r}: write the server's base URL, e.g. http://127.0.0.1:8080")
        if not http:
            return
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(f"--http {http!r}: write HOST:PORT, e.g. 127.0.0.1:8765")
        if len(mcp_token) < 16:
            raise UsageError(f"--http needs a bearer token of at least 16 characters in ${TOKEN_ENV}")

    from worldtree.cli.main import _guard

    _guard(check)
    try:
        if not http:
            server.run("stdio")
        else:
            serve_http(server, host.strip("[]"), int(port), mcp_token)
    finally:
        runs.close()
