"""``worldtree mcp``: a Model Context Protocol server (official ``mcp`` SDK) for AI assistants."""

from worldtree.mcp.server import build_server

__all__ = ["build_server"]
