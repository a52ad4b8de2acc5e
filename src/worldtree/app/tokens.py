"""API tokens and roles: create, list, revoke, and authenticate a presented token.

A token is ``wt_`` + 43 random URL-safe characters, shown once at creation; the store keeps only
its SHA-256 (a stolen database does not give working tokens). Roles are ordered: a ``viewer``
reads; a ``maintainer`` also submits, cancels and retries; an ``admin`` also manages tokens.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from worldtree.app.service import NotFoundError
from worldtree.errors import UsageError
from worldtree.model.durations import parse_duration
from worldtree.store.api import RunStore, TokenRecord

ROLES = ("viewer", "maintainer", "admin")
PREFIX = "wt_"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def allows(role: str, needed: str) -> bool:
    """Whether ``role`` may do what ``needed`` may (roles include the ones below them)."""
    return ROLES.index(role) >= ROLES.index(needed)


def create(store: RunStore, role: str, *, name: str | None = None,
           expires: str | None = None) -> tuple[dict[str, Any], str]:
    """A new token: its description and the token itself (shown once, never stored)."""
    if role not in ROLES:
        raise UsageError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    expires_at = None
    if expires:
        try:
            expires_at = datetime.now(UTC) + timedelta(seconds=parse_duration(expires))
        except ValueError as exc:
            raise UsageError(f"--expires: {exc}") from None
    token = PREFIX + secrets.token_urlsafe(32)
    token_id = "tok_" + secrets.token_hex(6)
    store.create_token(token_id=token_id, name=name or f"{role} token", role=role, secret_hash=digest(token),
                       expires_at=expires_at)
    return {"id": token_id, "name": name or f"{role} token", "role": role,
            "expires_at": expires_at.isoformat() if expires_at else None}, token


def list_tokens(store: RunStore) -> list[dict[str, Any]]:
    return [view(t) for t in store.list_tokens()]


def revoke(store: RunStore, token_id: str) -> None:
    if not store.revoke_token(token_id):
        raise NotFoundError(f"no active token {token_id!r}; `worldtree token list` shows them")


def authenticate(store: RunStore, token: str) -> TokenRecord | None:
    """The token's record if it is valid now (known, not revoked, not expired), else None."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    hashed = digest(token)
    record = store.token_by_hash(hashed)
    if record is None or record.revoked_at is not None:
        return None
    if record.expires_at is not None and record.expires_at <= datetime.now(UTC):
        return None
    return record


def view(record: TokenRecord) -> dict[str, Any]:
    return {"id": record.id, "name": record.name, "role": record.role, "created_at": record.created_at.isoformat(),
            "expires_at": record.expires_at.isoformat() if record.expires_at else None,
            "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None}


def audit_page(store: RunStore, *, page: int, page_size: int) -> dict[str, Any]:
    """The audit log, newest first: ``{items, total, page, page_size}``."""
    entries, total = store.audit_entries(offset=(page - 1) * page_size, limit=page_size)
    return {"items": [{"at": e.at.isoformat(), "actor": e.actor, "role": e.role, "action": e.action,
                       "target": e.target, "status": e.status, "client": e.client} for e in entries],
            "total": total, "page": page, "page_size": page_size}
