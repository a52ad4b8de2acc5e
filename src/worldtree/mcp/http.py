"""MCP over streamable HTTP, behind a bearer token.

The SDK's Starlette app is wrapped in a small ASGI guard: every HTTP request must carry
``Authorization: Bearer <token>`` (compared in constant time) or gets 401 before the SDK sees
it; lifespan events pass through so the SDK's session manager starts and stops with the server.
The token comes from the environment, never the command line (where ``ps`` shows it).
"""

from __future__ import annotations

import hmac
from typing import Any

from mcp.server.mcpserver import MCPServer

TOKEN_ENV = "WORLDTREE_MCP_TOKEN"


class BearerGuard:
    """ASGI middleware: 401 unless the request carries the token."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": b'{"error": "missing or wrong bearer token"}'})
                return
        await self.app(scope, receive, send)


def serve_http(server: MCPServer, host: str, port: int, token: str) -> None:
    """Serve ``server`` at ``http://host:port/mcp`` until interrupted."""
    import uvicorn

    app = BearerGuard(server.streamable_http_app(host=host), token)
    uvicorn.run(app, host=host, port=port, log_level="warning")
