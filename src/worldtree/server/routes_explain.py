"""``GET /api/v1/jobs/{job_id}/explain``: why a job is pending (see :mod:`worldtree.app.explain`).

``job_id`` is ``RUN_ID:JOB`` or ``RUN_ID/JOB`` (a job path may hold ``/``: ``build/compile``), or
an agent job's id. Viewer role: it reveals agent names and labels, nothing secret.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from worldtree.app import explain as explaining
from worldtree.server.auth import require

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


class AgentLine(BaseModel):
    agent_id: str
    agent: str
    verdict: str = Field(description="mismatch | offline | draining | busy | matches")
    reason: str = Field(description="e.g. `gpu: missing`, `cpu-cores: 4 is not > 8`, `busy 4/4`")


class Explanation(BaseModel):
    job_id: str
    run_id: str
    job: str
    stage: str | None
    state: str = Field(description="the job's state: pending, running, or how it ended")
    run_state: str
    selector: dict[str, Any] | None = Field(description="the job's label selector (null: any agent)")
    selector_text: str | None
    summary: str = Field(description="one line: why the job is pending, or that it is not")
    agents: list[AgentLine]


@router.get("/{job_id:path}/explain", response_model=Explanation, **require("viewer"))
def explain_job(request: Request, job_id: str) -> dict[str, Any]:
    """Every agent with the first reason it cannot take the job (or that it can), and a summary."""
    return explaining.explain(request.app.state.runtime.store, job_id)
