"""``/api/v1/repos`` (register, list, remove repositories; maintainer) and ``/api/v1/schedules``.

Secrets come in the request body (over TLS in production) and are stored encrypted; no response
ever carries them. Handlers translate to :mod:`worldtree.gitops.repos` and
:mod:`worldtree.gitops.schedules`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from worldtree.gitops import repos, schedules
from worldtree.server.auth import require

router = APIRouter(tags=["gitops"])


class RepoBody(BaseModel):
    name: str = Field(description="OWNER/NAME (GitLab: the project's path)")
    provider: str = Field(description="github, gitlab or gitea")
    clone_url: str
    webhook_secret: str = Field(description="the webhook's secret (stored encrypted, never returned)")
    status_token: str | None = Field(default=None, description="token for commit statuses (encrypted)")
    api_url: str | None = Field(default=None, description="status API base (GitHub Enterprise, self-hosted)")
    ci_file: str | None = Field(default=None, description="pipeline file (default ci.yaml, then .worldtree.yaml)")
    executor: str = Field(default="local", description="local, agents or argo")


class ScheduleBody(BaseModel):
    name: str = Field(description="the schedule's name (a later POST with the same name replaces it)")
    document: str = Field(description="a pipeline document with `on.schedule`")


@router.post("/api/v1/repos", status_code=201, **require("maintainer"))
def add_repo(request: Request, body: RepoBody) -> dict[str, Any]:
    """Register a repository for webhooks."""
    runtime = request.app.state.runtime
    return repos.add(runtime.store, request.app.state.gitops.secrets, name=body.name, provider=body.provider,
                     clone_url=body.clone_url, webhook_secret=body.webhook_secret, status_token=body.status_token,
                     api_url=body.api_url, ci_file=body.ci_file, executor=body.executor)


@router.get("/api/v1/repos", **require("maintainer"))
def list_repos(request: Request) -> dict[str, Any]:
    """Registered repositories (never their secrets)."""
    return {"items": repos.list_repos(request.app.state.runtime.store)}


@router.delete("/api/v1/repos/{repo_id}", status_code=204, **require("maintainer"))
def remove_repo(request: Request, repo_id: str) -> Response:
    """Forget a repository (by id), with its deliveries and schedules."""
    repos.remove(request.app.state.runtime.store, repo_id)
    return Response(status_code=204)


@router.get("/api/v1/schedules", **require("viewer"))
def list_schedules(request: Request) -> dict[str, Any]:
    """Every schedule with its next three times (UTC)."""
    return {"items": schedules.list_schedules(request.app.state.runtime.store)}


@router.post("/api/v1/schedules", status_code=201, **require("maintainer"))
def add_schedule(request: Request, body: ScheduleBody) -> dict[str, Any]:
    """Run a stored pipeline on its ``on.schedule`` crons (once per tick across replicas)."""
    return {"items": schedules.add_document_schedules(request.app.state.runtime.store, body.name, body.document)}
