"""Artifacts between jobs on different agents: job A on one agent uploads `out/`, job B on another
agent that `needs` A finds the file in its own workspace; REST lists it. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from tests.agents.conftest import Fleet, logs

pytestmark = pytest.mark.slow  # a real server and two agent processes

HANDOFF = """
name: handoff
jobs:
  make:
    labels: {role: builder}
    artifacts: {paths: [out/]}
    steps:
      - {name: write, run: "mkdir -p out/sub && echo result-42 > out/result.txt && echo deep > out/sub/d.txt"}
      - {name: more, run: "echo no > other.txt"}
  use:
    labels: {role: tester}
    needs: [make]
    steps:
      - {name: read, run: "cat out/result.txt out/sub/d.txt; test ! -e other.txt && echo other-absent"}
"""


def test_a_job_on_another_agent_gets_the_artifacts_of_the_job_it_needs(fleet: Fleet) -> None:
    server = fleet.start_server()
    builder = fleet.agent("builder", "role=builder")
    tester = fleet.agent("tester", "role=tester")
    fleet.registered(2)
    run_id = server.submit(HANDOFF)
    run = server.wait(run_id, timeout=60)
    assert run["state"] == "succeeded", (run, server.log(), builder.log(), tester.log())
    assert "claimed job make" in builder.log() and "claimed job use" in tester.log()
    lines = {(x["node"], x["line"]) for x in logs(server, run_id)}
    read = {line for node, line in lines if node.endswith("use/read")}
    assert {"result-42", "deep", "other-absent"} <= read, lines
    assert any("artifacts: uploaded 2 file(s)" in line for _, line in lines), lines
    assert any("artifacts: fetched 2 file(s)" in line for _, line in lines), lines
    listed = server.get(f"/api/v1/runs/{run_id}/artifacts").json()["items"]
    by_path = {(a["job"], a["path"]): a for a in listed}
    assert ("make", "out/result.txt") in by_path and ("make", "out/sub/d.txt") in by_path, listed
    assert by_path[("make", "out/result.txt")]["size"] == len("result-42\n")
    content = server.get(f"/api/v1/artifacts/{by_path[('make', 'out/result.txt')]['id']}")
    assert content.content == b"result-42\n"
