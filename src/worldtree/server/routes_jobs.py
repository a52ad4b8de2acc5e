"""``/api/v1/jobs``: seed 004's Job service over runs; the logic is :mod:`worldtree.app.jobs` (shared
with gRPC JobService). A job id is ``RUN_ID:KEY`` (``20261130-101500-abcde:build.compile``); the
job's name, ``stage/job`` and ``RUN_ID/…`` are accepted too. Cancel and retry act on the job's run
(the engine cancels and retries runs, not single jobs): the answers say ``"scope": "run"``."""

from __future__ import annotations

from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from worldtree.app import jobs, service
from worldtree.server.auth import require
from worldtree.server.routes_artifacts import ArtifactList

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


class JobNode(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    path: str
    state: str
    exit_code: int | None
    error: str | None


class Job(BaseModel):
    """Seed 004's JobDetail over a run's job."""

    model_config = ConfigDict(extra="allow")
    id: str = Field(description="RUN_ID:KEY (KEY: the job's stage and job slugs joined by '.')")
    run_id: str
    key: str
    name: str
    stage: str | None
    pipeline: str
    state: str = Field(description=", ".join(jobs.JOB_STATES))
    attempt: int
    executor: str | None = Field(description="the agent that ran it, else pid@host of the server executor")
    exit_code: int | None
    started_at: str | None
    finished_at: str | None
    nodes: list[JobNode]


class JobList(BaseModel):
    items: list[Job]
    total: int
    page: int
    page_size: int


class JobCancelled(Job):
    scope: str = Field(default="run", description="what the cancel applied to: the job's run")


class JobRetried(BaseModel):
    id: str
    run_id: str
    state: str
    attempt: int
    scope: str = Field(description="what the retry applied to: the job's run")


class CreateJob(BaseModel):
    """Seed 004's CreateJob: a one-job run."""

    name: str = Field(min_length=1, max_length=200)
    commands: list[str] = Field(min_length=1, description="run in order in one shell")
    env: dict[str, str] = Field(default_factory=dict)
    stage: str = ""
    workspace: str = Field(default="", description="the job's working directory")
    timeout: int = Field(default=0, ge=0, le=10 * 366 * 86400, description="seconds; 0: the pipeline's")
    image: str = ""
    secrets: list[str] = Field(default_factory=list, description="names of server secrets the job sees")
    artifacts: dict[str, Any] | list[str] | None = Field(default=None, description="{paths: [globs], expire_in: 7d}")
    allow_failure: bool = False
    retry_count: int = Field(default=0, ge=0, le=100)
    label_selector: dict[str, Any] | None = Field(default=None, description="{match_labels, match_expressions}")


class JobCreated(BaseModel):
    id: str
    run_id: str
    state: str


class JobLine(BaseModel):
    seq: int
    node: str
    stream: str
    line: str
    ts: str | None
    attempt: int


class JobLogs(BaseModel):
    id: str
    items: list[JobLine]
    next_offset: int


def _runtime(request: Request) -> Any:
    return request.app.state.runtime


@router.get("", response_model=JobList, **require("viewer"))
def list_jobs(request: Request, run: str | None = None,
              state: Annotated[str | None, Query(json_schema_extra={"enum": list(jobs.JOB_STATES)})] = None,
              executor: str | None = None, page: Annotated[int, Query(ge=1, le=2**31)] = 1,
              page_size: Annotated[int, Query(ge=1, le=service.MAX_PAGE_SIZE)] = 50) -> dict[str, Any]:
    """Jobs of one run (``run``), else of the newest runs; by state and executor (a substring)."""
    return jobs.list_jobs(_runtime(request).store, run=run, state=state, executor=executor, page=page,
                          page_size=page_size)


@router.post("", status_code=202, response_model=JobCreated, **require("maintainer"))
async def create_job(request: Request, body: CreateJob) -> JSONResponse:
    """Queue a one-job run from CreateJob fields (checked by the pipeline loader: 422 with its words)."""
    runtime = _runtime(request)
    fields = body.model_dump()
    if isinstance(body.artifacts, list):
        fields["artifacts"] = {"paths": body.artifacts}
    made = await to_thread.run_sync(lambda: jobs.create(runtime.store, runtime.config, fields))
    runtime.wake.set()
    return JSONResponse(made, status_code=202, headers={"Location": f"/api/v1/jobs/{made['id']}"})


@router.post("/{job_id:path}/cancel", status_code=202, response_model=JobCancelled, **require("maintainer"))
def cancel_job(request: Request, job_id: str) -> dict[str, Any]:
    """Cancel the job's run (every job of it: the engine cancels runs, not single jobs)."""
    return {**jobs.cancel(_runtime(request).store, job_id), "scope": "run"}


@router.post("/{job_id:path}/retry", status_code=202, response_model=JobRetried, **require("maintainer"))
def retry_job(request: Request, job_id: str) -> dict[str, Any]:
    """A new attempt of the job's run: what did not succeed runs again, the rest is reused."""
    runtime = _runtime(request)
    made = jobs.retry(runtime.store, job_id)
    runtime.wake.set()
    return made


@router.get("/{job_id:path}/logs", response_model=JobLogs, **require("viewer"))
def job_logs(request: Request, job_id: str, offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
             limit: Annotated[int, Query(ge=1, le=service.MAX_LOG_LIMIT)] = 1000,
             format: Annotated[str, Query(pattern="^(json|text)$")] = "json") -> Response | dict[str, Any]:
    """The job's lines after run log seq ``offset``: JSON ``{items, next_offset}``, or ``format=text``."""
    view, lines = jobs.logs(_runtime(request).store, job_id, offset=offset, limit=limit)
    if format == "text":
        return PlainTextResponse("".join(f"{line.line}\n" for line in lines))
    return {"id": view["id"], "items": [service.line_json(line) for line in lines],
            "next_offset": lines[-1].seq if lines else offset}


@router.get("/{job_id:path}/artifacts", response_model=ArtifactList, **require("viewer"))
def job_artifacts(request: Request, job_id: str) -> dict[str, Any]:
    """The files the job's ``artifacts:`` collected (every attempt's)."""
    return {"items": jobs.job_artifacts(_runtime(request).store, job_id)}


@router.get("/{job_id:path}", response_model=Job, **require("viewer"))
def get_job(request: Request, job_id: str) -> dict[str, Any]:
    """The job (registered last: ``{job_id:path}`` also matches the routes above)."""
    return jobs.get(_runtime(request).store, job_id)
