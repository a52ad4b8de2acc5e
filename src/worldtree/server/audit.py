"""The audit log: every mutating API call (and every refused one) is written to the store.

Recorded after the response is sent, with who made it (the token's id and role, or
``anonymous`` when authentication is off), the route template, the run or token id in the path,
the status and the client address. A store that cannot take the entry is logged loudly; the
call itself has already happened, so it is not undone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from anyio import to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worldtree.store.api import AuditEntry, RunStore

log = logging.getLogger("worldtree.server")

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Audited:
    """ASGI middleware writing an :class:`AuditEntry` per mutating ``/api/`` call."""

    def __init__(self, app: ASGIApp, store: Callable[[], RunStore | None]) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in MUTATING or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        status = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            await self._record(scope, status[0])

    async def _record(self, scope: Scope, status: int) -> None:
        store = self.store()
        if store is None:
            return
        token = scope.get("state", {}).get("token")
        route = scope.get("route")
        params = scope.get("path_params") or {}
        client = scope.get("client")
        entry = AuditEntry(
            at=datetime.now(UTC), actor=getattr(token, "id", None) or "anonymous", role=getattr(token, "role", None),
            action=f"{scope['method']} {getattr(route, 'path', None) or scope['path'][:150]}",
            target=next(iter(params.values()), None) if params else None, status=status,
            client=client[0] if client else None)
        try:
            await to_thread.run_sync(store.record_audit, entry)
        except Exception as exc:  # the call happened; losing its record must be seen
            log.error("could not write the audit log (%s %s by %s): %s", entry.action, entry.target, entry.actor, exc)
