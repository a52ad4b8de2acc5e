"""Artifacts: a run's list (``GET /runs/{id}/artifacts``) and one file's content (``GET /artifacts/{id}``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from worldtree.app import artifacts, service
from worldtree.server.auth import require

router = APIRouter(prefix="/api/v1", tags=["artifacts"])


class ArtifactView(BaseModel):
    id: str
    run_id: str
    attempt: int
    job: str
    path: str
    sha256: str
    size: int
    created_at: str
    expires_at: str | None


class ArtifactList(BaseModel):
    items: list[ArtifactView]


@router.get("/runs/{run_id}/artifacts", response_model=ArtifactList, **require("viewer"))
def run_artifacts(request: Request, run_id: str, job: str | None = None) -> dict[str, Any]:
    """The files the run's jobs collected (``job`` narrows to one job by name)."""
    store = request.app.state.runtime.store
    full = service.resolve(store, run_id)
    return {"items": [a.as_json() for a in artifacts.list_artifacts(store, full, job)]}


def _chunks(src: BinaryIO) -> Iterator[bytes]:
    with src:
        while chunk := src.read(1 << 16):
            yield chunk


@router.get("/artifacts/{artifact_id}", response_class=StreamingResponse, **require("viewer"),
            responses={200: {"content": {"application/octet-stream": {}}}})
def download_artifact(request: Request, artifact_id: str) -> StreamingResponse:
    """The file, streamed (``Content-Disposition`` carries its name, ``ETag`` its sha256)."""
    found, src = artifacts.open_artifact(request.app.state.runtime.store, artifact_id)
    name = found.path.rsplit("/", 1)[-1]
    return StreamingResponse(_chunks(src), media_type="application/octet-stream", headers={
        "Content-Length": str(found.size), "ETag": f'"{found.sha256}"',
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"})
