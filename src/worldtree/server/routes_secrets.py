"""``/api/v1/secrets``: write-only secrets (admin). No response ever carries a value."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from worldtree.app import secrets_store
from worldtree.server.auth import require
from worldtree.server.server_data import keys

router = APIRouter(prefix="/api/v1/secrets", tags=["secrets"])


class SecretBody(BaseModel):
    value: str = Field(description="the secret value (write-only: never returned)", min_length=1,
                       max_length=secrets_store.MAX_VALUE_BYTES)


class SecretView(BaseModel):
    name: str
    created_at: str
    updated_at: str


class SecretWritten(SecretView):
    created: bool = Field(description="true when the name was new")


class SecretList(BaseModel):
    items: list[SecretView]


def _store(request: Request) -> Any:
    return request.app.state.runtime.store


@router.put("/{name}", response_model=SecretWritten, **require("admin"),
            responses={201: {"model": SecretWritten, "description": "created"}})
def put_secret(request: Request, name: str, body: SecretBody, response: Response) -> dict[str, Any]:
    """Create or replace a secret (201 when new, 200 when replaced). Encrypted before it is stored."""
    written = secrets_store.put(_store(request), keys(request), name, body.value)
    response.status_code = 201 if written["created"] else 200
    return written


@router.get("", response_model=SecretList, **require("admin"))
def list_secrets(request: Request) -> dict[str, Any]:
    """Secret names with their creation and update times (never the values)."""
    return {"items": secrets_store.list_secrets(_store(request))}


@router.delete("/{name}", status_code=204, **require("admin"))
def delete_secret(request: Request, name: str) -> Response:
    """Delete a secret; runs queued after this fail where they need it."""
    secrets_store.delete(_store(request), name)
    return Response(status_code=204)
