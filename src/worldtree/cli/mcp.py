"""``worldtree mcp``: serve MCP over stdio or HTTP (a leaf: the server lives in worldtree.mcp)."""

from __future__ import annotations

import os
from typing import Annotated

import typer


def mcp_command(
    dangerously_allow_apply: Annotated[bool, typer.Option(
        "--dangerously-allow-apply", help="Let MCP clients apply plans (every call is audited on stderr).")] = False,
    http: Annotated[str, typer.Option(
        "--http", help="Serve streamable HTTP at HOST:PORT (path /mcp) instead of stdio; "
                       "clients need the bearer token in $WORLDTREE_MCP_TOKEN.")] = "",
) -> None:
    """Serve the StackFlow tools to an AI assistant (Model Context Protocol)."""
    from worldtree.errors import UsageError
    from worldtree.mcp import build_server
    from worldtree.mcp.http import TOKEN_ENV, serve_http

    server = build_server(allow_apply=dangerously_allow_apply)
    if not http:
        server.run("stdio")
        return
    host, sep, port = http.rpartition(":")
    token = os.environ.get(TOKEN_ENV, "")

    def check() -> None:
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(f"--http {http!r}: write HOST:PORT, e.g. 127.0.0.1:8765")
        if len(token) < 16:
            raise UsageError(f"--http needs a bearer token of at least 16 characters in ${TOKEN_ENV}")

    from worldtree.cli.main import _guard

    _guard(check)
    serve_http(server, host.strip("[]"), int(port), token)
