"""Requests whose path or query holds a NUL byte are answered here, before any route reads the store.

No id, name or filter worldtree stores can hold NUL, so ``/api/v1/runs/a%00b`` names nothing (404)
and ``?run=a%00b`` filters by a value that cannot exist (422). Without this guard every such id
reached the store: SQLite answered "not found" but PostgreSQL refuses NUL in text parameters, which
came back as 503 "the run store cannot be reached" — a lie that tells clients to retry, and a
one-request way to fill the log with store errors.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from worldtree.server.errors import error_body


class NulGuard:
    """ASGI middleware: 404 for a NUL in the path, 422 for one in the query string."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            refusal = _refusal(scope)
            if refusal is not None:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                await _answer(send, *refusal)
                return
        await self.app(scope, receive, send)


def _refusal(scope: Scope) -> tuple[int, dict[str, Any]] | None:
    if "\x00" in scope.get("path", ""):
        return 404, error_body("not_found", "no resource has a NUL byte in its name")
    query: bytes = scope.get("query_string", b"")
    if b"\x00" in query or b"%00" in query:
        return 422, error_body("invalid_request", "a query parameter holds a NUL byte; remove it")
    return None


async def _answer(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
