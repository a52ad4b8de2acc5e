"""``worldtree mcp``: serve MCP over stdio (a leaf: the server lives in worldtree.mcp)."""

from __future__ import annotations

from typing import Annotated

import typer


def mcp_command(
    dangerously_allow_apply: Annotated[bool, typer.Option(
        "--dangerously-allow-apply", help="Let MCP clients apply plans (every call is audited on stderr).")] = False,
) -> None:
    """Serve the StackFlow tools to an AI assistant over stdio (Model Context Protocol)."""
    from worldtree.mcp import build_server

    build_server(allow_apply=dangerously_allow_apply).run("stdio")
