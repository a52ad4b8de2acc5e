"""``/api/v1/pipelines``: stored definitions, trigger and stop (seed 004); maintainer writes."""

from __future__ import annotations

import json
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from worldtree.app import pipelines, service
from worldtree.compile.yaml_source import MAX_DOCUMENT_BYTES
from worldtree.errors import UsageError
from worldtree.server.auth import require

router = APIRouter(prefix="/api/v1/pipelines", tags=["pipelines"])


class PipelineBody(BaseModel):
    name: str | None = Field(default=None, description="default: the document's `name:`")
    document: str = Field(description="the pipeline document (YAML)")


class TriggerBody(BaseModel):
    env: dict[str, str] = Field(default_factory=dict, description="variables that override the document's")


class PipelineSummary(BaseModel):
    name: str
    created_at: str
    updated_at: str
    runs: int


class PipelineList(BaseModel):
    items: list[PipelineSummary]
    total: int
    page: int
    page_size: int


class LastRun(BaseModel):
    id: str
    state: str
    created_at: str


class PipelineDetail(PipelineSummary):
    document: str
    title: str = Field(description="the document's `name:`")
    stages: list[str]
    jobs: list[str]
    env: dict[str, str]
    runs_by_state: dict[str, int]
    last_run: LastRun | None


class Triggered(BaseModel):
    id: str
    state: str
    pipeline: str


class Stopped(BaseModel):
    pipeline: str
    cancelled: list[str]


def _doc_body(role: str) -> dict[str, Any]:
    kwargs = require(role)
    kwargs["openapi_extra"]["requestBody"] = {"content": {
        "application/yaml": {"schema": {"type": "string"}},
        "application/json": {"schema": PipelineBody.model_json_schema()}}, "required": True}
    return kwargs


async def _document(request: Request) -> tuple[str | None, str]:
    """(name, document) from a YAML body or JSON ``{"name", "document"}``; size-limited."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_DOCUMENT_BYTES:
            raise UsageError(f"the document is over {MAX_DOCUMENT_BYTES} bytes; split the pipeline")
        chunks.append(chunk)
    try:
        text = b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError("the body is not UTF-8 text") from None
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        return request.query_params.get("name"), text
    try:
        body = PipelineBody.model_validate(json.loads(text))
    except (ValueError, TypeError, RecursionError) as exc:  # RecursionError: '[' * 100000 (was a 500)
        raise UsageError("the JSON body must be {\"name\": NAME, \"document\": YAML text}: "
                         f"{str(exc).splitlines()[0]}") from None
    return body.name, body.document


def _runtime(request: Request) -> Any:
    return request.app.state.runtime


@router.post("", status_code=201, response_model=PipelineDetail, **_doc_body("maintainer"))
async def create_pipeline(request: Request) -> JSONResponse:
    """Store a definition (YAML body with optional ``?name=``, or JSON); 422 with located diagnostics."""
    name, document = await _document(request)
    store = _runtime(request).store
    made = await to_thread.run_sync(lambda: pipelines.create(store, document, name))
    return JSONResponse(made, status_code=201, headers={"Location": f"/api/v1/pipelines/{made['name']}"})


@router.get("", response_model=PipelineList, **require("viewer"))
def list_pipelines(request: Request, page: Annotated[int, Query(ge=1, le=2**31)] = 1,
                   page_size: Annotated[int, Query(ge=1, le=service.MAX_PAGE_SIZE)] = 50) -> dict[str, Any]:
    """Stored definitions by name, with how many runs each triggered."""
    return pipelines.list_pipelines(_runtime(request).store, page=page, page_size=page_size)


@router.get("/{name}", response_model=PipelineDetail, **require("viewer"))
def get_pipeline(request: Request, name: str) -> dict[str, Any]:
    """The definition, its stages, jobs and env, and its runs by state."""
    return pipelines.get(_runtime(request).store, name)


@router.put("/{name}", response_model=PipelineDetail, **_doc_body("maintainer"))
async def replace_pipeline(request: Request, name: str) -> dict[str, Any]:
    """Replace the definition (checked first; the old one stays when the new one is invalid)."""
    _, document = await _document(request)
    store = _runtime(request).store
    return await to_thread.run_sync(lambda: pipelines.replace(store, name, document))


@router.delete("/{name}", status_code=204, **require("maintainer"))
def delete_pipeline(request: Request, name: str) -> Response:
    """Forget the definition; the runs it made stay."""
    pipelines.delete(_runtime(request).store, name)
    return Response(status_code=204)


@router.post("/{name}/trigger", status_code=202, response_model=Triggered, **require("maintainer"))
def trigger_pipeline(request: Request, name: str, body: TriggerBody | None = None) -> JSONResponse:
    """Queue a run of the definition; ``{"env": {...}}`` overrides its variables."""
    runtime = _runtime(request)
    made = pipelines.trigger(runtime.store, runtime.config, name, env=body.env if body else None)
    runtime.wake.set()
    return JSONResponse(made, status_code=202, headers={"Location": f"/api/v1/runs/{made['id']}"})


@router.post("/{name}/stop", status_code=202, response_model=Stopped, **require("maintainer"))
def stop_pipeline(request: Request, name: str) -> dict[str, Any]:
    """Cancel every queued or running run this pipeline's triggers made."""
    return pipelines.stop(_runtime(request).store, name)
