"""``GET /api/v1/jobs/{id}/explain`` and ``worldtree agents explain`` against a real server process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert
from tests.server.conftest import Servers

from worldtree.store import open_store
from worldtree.store.agents_tables import agents
from worldtree.store.server_data import engine_of

DOC = """
name: routed
label_selector: {match_labels: {os: linux}}
stages:
  - name: build
    jobs:
      - name: compile
        label_selector:
          match_expressions: [{key: cpu-cores, operator: GT, values: ["8"]}]
        steps: [echo hi]
"""
T0 = datetime(2026, 11, 30, 1, 2, 3, tzinfo=UTC)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORLDTREE_")}
    return subprocess.run([sys.executable, "-m", "worldtree.cli.main", "agents", "explain", *args], env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_explain_over_rest_and_cli(servers: Servers) -> None:
    server = servers(executors=0)  # nothing takes the run: its job stays pending
    run_id = server.submit(DOC)
    store = open_store(servers.store)
    try:
        with engine_of(store).begin() as conn:
            for name, labels, status in (("a-small", {"os": "linux", "cpu-cores": "4"}, "online"),
                                         ("b-big", {"os": "linux", "cpu-cores": "32"}, "offline")):
                conn.execute(insert(agents).values(
                    id=f"id-{name}", name=name, labels=json.dumps(labels), capacity=2, status=status, host="{}",
                    registered_at=T0, last_seen=datetime.now(UTC) if status == "online" else T0,
                    offline_since=T0 if status == "offline" else None))
    finally:
        store.close()

    response = server.get(f"/api/v1/jobs/{run_id}:build/compile/explain")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "queued" and body["job_id"] == f"{run_id}:build.compile"
    assert body["selector_text"] == "cpu-cores GT [8]"  # the job's selector replaces the pipeline's
    assert [(a["agent"], a["reason"]) for a in body["agents"]] == [
        ("a-small", "cpu-cores: 4 is not > 8"), ("b-big", "offline since 2026-11-30T01:02:03+00:00")]
    assert body["summary"] == ("every agent that matches the label selector cpu-cores GT [8] is unavailable: "
                               "1 offline; 1 do not match")

    missing = server.get(f"/api/v1/jobs/{run_id}:deploy/explain")
    assert missing.status_code == 404 and "has no job 'deploy'" in missing.json()["error"]["message"]
    assert server.get("/api/v1/jobs/garbage/explain").status_code == 400

    remote = _cli(f"{run_id}:compile", "--server", server.url)
    assert remote.returncode == 0, remote.stderr
    assert remote.stdout.splitlines() == [
        f"job {run_id}:build.compile: queued; agents: cpu-cores GT [8]",
        f"  {body['summary']}",
        "  a-small  cpu-cores: 4 is not > 8",
        "  b-big    offline since 2026-11-30T01:02:03+00:00",
    ]
    local = _cli(f"{run_id}:build.compile", "--store", servers.store, "--json")
    assert local.returncode == 0, local.stderr
    assert json.loads(local.stdout) == body
    bad = _cli(f"{run_id}:nope", "--server", server.url)
    assert bad.returncode == 2 and "has no job 'nope'" in bad.stderr


@pytest.mark.slow
def test_a_job_handed_to_agents_but_not_taken_is_pending(servers: Servers) -> None:
    """The executor dispatches the job to the agents (its node is running, to a backend that waits for
    an agent); explain still calls it pending, and says why: no agent at all."""
    server = servers()
    run_id = server.submit(DOC)
    server.wait(run_id, until=lambda r: r["state"] == "running")
    deadline = time.monotonic() + 30
    while True:  # bounded: until the agents feature has queued the job for an agent
        body = server.get(f"/api/v1/jobs/{run_id}:build.compile/explain").json()
        if body["summary"].startswith("no agent is registered") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert body["state"] == "pending", body
    assert body["summary"] == ("no agent is registered (label selector cpu-cores GT [8]); start one with "
                               "`worldtree agent --server HOST:PORT`")
    assert server.get(f"/api/v1/jobs/{run_id}:build.compile").json()["state"] == "pending"
    assert server.post(f"/api/v1/runs/{run_id}/cancel").status_code in (200, 202)
