"""Why is it pending: the per-agent lines (pure), and ``explain`` over a real store, SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert

from worldtree.app import service
from worldtree.app.explain import explain, explain_job, summarize
from worldtree.errors import UsageError
from worldtree.model.labels import LabelSelector
from worldtree.store import RunStore, open_store
from worldtree.store.agent_snapshots import AgentSnapshot
from worldtree.store.agents_tables import agent_jobs, agent_tasks, agents
from worldtree.store.server_data import engine_of
from worldtree.testing.stores import pg_unavailable_reason, store_url

T0 = datetime(2026, 11, 30, 1, 2, 3, tzinfo=UTC)
GPU = LabelSelector.model_validate({"match_labels": {"os": "linux"}, "match_expressions": [
    {"key": "gpu", "operator": "EXISTS"}, {"key": "cpu-cores", "operator": "GT", "values": ["8"]}]})


def agent(name: str, labels: dict[str, str], **kw: object) -> AgentSnapshot:
    return AgentSnapshot(id=f"id-{name}", name=name, labels=labels, **kw)  # type: ignore[arg-type]


FLEET = [
    agent("no-gpu", {"os": "linux", "cpu-cores": "16"}),
    agent("small", {"os": "linux", "gpu": "true", "cpu-cores": "4"}),
    agent("full", {"os": "linux", "gpu": "true", "cpu-cores": "32"}, capacity=4, running=4),
    agent("gone", {"os": "linux", "gpu": "true", "cpu-cores": "32"}, status="offline", offline_since=T0),
    agent("draining", {"os": "linux", "gpu": "true", "cpu-cores": "32"}, draining=True, running=1, capacity=2),
    agent("free", {"os": "linux", "gpu": "true", "cpu-cores": "32"}, capacity=4, running=2),
    agent("mac", {"os": "darwin", "gpu": "true", "cpu-cores": "many"}, status="offline"),
]


def test_each_agent_gets_the_first_reason_that_applies() -> None:
    lines = {line.agent: line.reason for line in explain_job(GPU, FLEET)}
    assert lines == {
        "no-gpu": "gpu: missing",
        "small": "cpu-cores: 4 is not > 8",
        "full": "busy 4/4",
        "gone": "offline since 2026-11-30T01:02:03+00:00",
        "draining": "draining (1/2 busy): takes no new jobs",
        "free": "matches (2/4 busy)",
        "mac": "os: darwin is not linux",  # a label mismatch comes before offline
    }


def test_summaries() -> None:
    assert summarize(GPU, explain_job(GPU, FLEET)).startswith("1 matching agent(s) have a free slot")
    unavailable = [a for a in FLEET if a.name != "free"]
    assert summarize(GPU, explain_job(GPU, unavailable)) == (
        "every agent that matches the label selector os=linux, gpu EXISTS, cpu-cores GT [8] is unavailable: "
        "1 busy, 1 offline, 1 draining; 3 do not match")
    assert summarize(GPU, explain_job(GPU, FLEET[:2])) == (
        "no agent matches the label selector os=linux, gpu EXISTS, cpu-cores GT [8]: 2 agent(s), none with the "
        "labels asked for")
    assert summarize(None, []).startswith("no agent is registered (no label selector)")
    # no selector: every online agent with a free slot matches
    assert [line.verdict for line in explain_job(None, FLEET)] == [
        "matches", "matches", "busy", "offline", "draining", "matches", "offline"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    if request.param == "postgres" and (why := pg_unavailable_reason()) is not None:
        pytest.skip(f"NOT TESTED ON POSTGRESQL: {why}")
    with store_url(request.param, tmp_path) as url:
        opened = open_store(url)
        yield opened
        opened.close()


DOC = """
name: p
stages:
  - name: build
    label_selector:
      match_labels: {os: linux}
      match_expressions: [{key: gpu, operator: EXISTS}, {key: cpu-cores, operator: GT, values: ["8"]}]
    jobs:
      - {name: compile, steps: [echo a, echo b]}
  - name: test
    jobs:
      - {name: unit, steps: [echo c]}
"""


def _add_agents(store: RunStore, fleet: list[AgentSnapshot]) -> None:
    """Agents as registration leaves them: an online one was seen just now (else a sweep marks it offline)."""
    now = datetime.now(UTC)
    with engine_of(store).begin() as conn:
        for a in fleet:
            conn.execute(insert(agents).values(
                id=a.id, name=a.name, labels=json.dumps(a.labels), capacity=a.capacity, status=a.status,
                draining=int(a.draining), host="{}", registered_at=T0,
                last_seen=now if a.status == "online" else T0, offline_since=a.offline_since))


def test_explain_a_queued_job_from_the_store(store: RunStore, tmp_path: Path) -> None:
    run_id = service.submit(store, service.ServiceConfig(str(tmp_path)), DOC)["id"]
    _add_agents(store, FLEET)
    with engine_of(store).begin() as conn:  # the agent "full" holds 2 jobs, each with a task under way
        for i in range(2):
            conn.execute(insert(agent_jobs).values(id=f"aj-{i}", run_id=run_id, attempt=1, job="compile",
                                                   graph="{}", state="claimed", agent_id="id-full",
                                                   created_at=T0))
            conn.execute(insert(agent_tasks).values(id=f"at-{i}", job_id=f"aj-{i}", node="build/compile/step-1",
                                                    command="echo", env="{}", purpose="run", try_number=1,
                                                    state="sent", created_at=T0))
    got = explain(store, f"{run_id}:build/compile")
    assert got["job_id"] == f"{run_id}:build.compile" and got["state"] == "queued"
    assert got["selector_text"] == "os=linux, gpu EXISTS, cpu-cores GT [8]"
    lines = {line["agent"]: line["reason"] for line in got["agents"]}
    assert lines["small"] == "cpu-cores: 4 is not > 8"
    assert lines["full"] == "matches (2/4 busy)"  # capacity from the table, running from agent_jobs
    assert lines["gone"] == "offline since 2026-11-30T01:02:03+00:00"
    assert got["summary"].startswith("2 matching agent(s) have a free slot")
    # the same job by name, by JobService's RUN/JOB spelling, and through an agent job's id
    assert explain(store, f"{run_id}/compile")["job_id"] == got["job_id"]
    assert explain(store, "aj-0")["job_id"] == got["job_id"]
    # a job waiting for its needs says so before any agent talk
    assert explain(store, f"{run_id}:unit")["summary"] == "the job waits for the jobs it needs: build.compile"


def test_explain_errors(store: RunStore, tmp_path: Path) -> None:
    run_id = service.submit(store, service.ServiceConfig(str(tmp_path)), DOC)["id"]
    with pytest.raises(service.NotFoundError, match=r"has no job 'deploy'; its jobs: build\.compile, test\.unit"):
        explain(store, f"{run_id}:deploy")
    with pytest.raises(service.NotFoundError, match="no run 'nope'"):
        explain(store, "nope:compile")
    with pytest.raises(UsageError, match="write RUN_ID:JOB"):
        explain(store, "not-a-job")
