"""A task queued by one replica and handed to an agent by another still gets its secrets.

The replica that runs the run's coordinator holds the secret values only in memory; the agent may
be connected to any replica. That one resolves them again from the server's secret store."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.agents.conftest import AGENT_ENV, AgentProc, logs
from tests.server.conftest import Servers, free_port
from tests.server.conftest import pg_servers as pg_servers

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def agent_b(tmp_path: Path) -> Iterator[list[AgentProc]]:
    started: list[AgentProc] = []
    yield started
    for agent in started:
        agent.stop()


def test_a_secret_reaches_an_agent_served_by_another_replica(pg_servers: Servers, tmp_path: Path,
                                                              agent_b: list[AgentProc]) -> None:
    port_a, port_b = free_port(), free_port()
    a = pg_servers(args=["--grpc-port", str(port_a), "--drain-seconds", "1"], env=AGENT_ENV)
    b = pg_servers(args=["--grpc-port", str(port_b), "--drain-seconds", "1"], env=AGENT_ENV, executors=0)
    agent_b.append(AgentProc(f"127.0.0.1:{port_b}", tmp_path / "work-b", labels="pool=b", name="b").start())

    value = "replica-s3cr3t-0815"
    assert httpx.put(f"{a.url}/api/v1/secrets/DEPLOY_TOKEN", json={"value": value}).status_code == 201
    digest = hashlib.sha256(f"{value}\n".encode()).hexdigest()[:16]
    run_id = a.submit("name: s\njobs:\n  w:\n    labels: {pool: b}\n    secrets: [DEPLOY_TOKEN]\n"
                      "    steps: ['echo token=$DEPLOY_TOKEN; "
                      f"test $(echo $DEPLOY_TOKEN | sha256sum | cut -c1-16) = {digest}']\n")
    final = a.wait(run_id, timeout=60)
    assert final["state"] == "succeeded", (final, logs(a, run_id), b.log())
    assert [x["line"] for x in logs(a, run_id)] == ["token=***"]
