"""Who is calling: ``Authorization: Bearer TOKEN`` (or HTTP Basic with the token as password, for
seed 003 clients), checked against the store's tokens and the route's role.

Each protected route depends on :func:`require` with the least role it needs, and says so in the
OpenAPI document (``x-required-role``), so the role matrix can be tested from the route table.
With authentication off (``--no-auth``, allowed only on a loopback address) every call passes.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import Depends, Request

from worldtree.app import tokens
from worldtree.store.api import TokenRecord

ROLE_KEY = "x-required-role"


class AuthError(Exception):
    """401 (no valid token) or 403 (a valid token whose role is not enough)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def presented(header: str | None) -> str | None:
    """The token in an ``Authorization`` header (Bearer, or Basic with the token as the password)."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def require(role: str) -> dict[str, Any]:
    """Route keyword arguments: the dependency checking ``role``, and its mark in the OpenAPI document."""

    def check(request: Request) -> None:
        record = authorize(request.app.state.runtime, request.headers.get("authorization"), role)
        if record is not None:
            request.state.token = record

    return {"dependencies": [Depends(check)], "openapi_extra": {ROLE_KEY: role}}


def authorize(runtime: Any, header: str | None, role: str) -> TokenRecord | None:
    """The caller's token record when it may act as ``role``; None with authentication off.

    AuthError (401/403) otherwise. Used by HTTP routes (through :func:`require`) and by WebSocket
    handshakes, which have no dependency injection of their own for a refusal."""
    if not runtime.auth:
        return None
    token = presented(header)
    if token is None:
        raise AuthError(401, "authentication required: send `Authorization: Bearer TOKEN` "
                             "(`worldtree token create` makes one)")
    record = tokens.authenticate(runtime.store, token)
    if record is None:
        raise AuthError(401, "the token is unknown, revoked or expired")
    if not tokens.allows(record.role, role):
        raise AuthError(403, f"this needs the {role} role; the token is a {record.role}'s")
    return record
