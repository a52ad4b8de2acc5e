"""REST for agents: list, show, relabel, drain (issue 9). Handlers only translate to :mod:`worldtree.app.agents`.

``GET /api/v1/agents`` and ``GET /api/v1/agents/{id}`` (viewer): labels, status (idle, busy or
offline), capacity, running jobs, host info, metrics, last heartbeat. ``PATCH
/api/v1/agents/{id}/labels`` (maintainer): ``{"labels": {...}, "mode": "merge"|"replace"}``.
``POST /api/v1/agents/{id}/drain`` (maintainer): the agent finishes its jobs and takes no new one.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from worldtree.app import agents
from worldtree.app.service import NotFoundError
from worldtree.server.auth import require

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])


class LabelsBody(BaseModel):
    labels: dict[str, str] = Field(description="labels to set")
    mode: Literal["merge", "replace"] = Field("merge", description="merge into the current labels, or replace them")


def _store(request: Request) -> Any:
    return request.app.state.runtime.store


def _one(body: Any) -> dict[str, Any]:
    try:
        result: dict[str, Any] = body()
    except LookupError as exc:
        raise NotFoundError(str(exc.args[0] if exc.args else exc)) from None
    return result


@router.get("", **require("viewer"))
def list_agents(request: Request) -> dict[str, Any]:
    """Every agent, by name."""
    items = agents.list_agents(_store(request))
    return {"items": items, "total": len(items)}


@router.get("/{agent_id}", **require("viewer"))
def get_agent(request: Request, agent_id: str) -> dict[str, Any]:
    return _one(lambda: agents.get_agent(_store(request), agent_id))


@router.patch("/{agent_id}/labels", **require("maintainer"))
def patch_labels(request: Request, agent_id: str, body: LabelsBody) -> dict[str, Any]:
    """Merge or replace the agent's labels; jobs are matched against the new ones from now on."""
    def change() -> dict[str, Any]:
        agents.update_labels(_store(request), agent_id, body.labels, merge=body.mode == "merge")
        return agents.get_agent(_store(request), agent_id)
    return _one(change)


@router.post("/{agent_id}/drain", **require("maintainer"))
def drain_agent(request: Request, agent_id: str) -> dict[str, Any]:
    """Finish running jobs, take no new ones."""
    return _one(lambda: agents.drain(_store(request), agent_id))
