"""Artifacts between jobs on different agents: job A on one agent uploads `out/`, job B on another
agent that `needs` A finds the file in its own workspace; REST lists it. SQLite and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import pytest
from tests.agents.conftest import Fleet, logs

from worldtree.agent.artifacts import rule_for, target
from worldtree.api.agent.v1 import agent_pb2 as apb
from worldtree.api.agent.v1 import agent_pb2_grpc
from worldtree.errors import BackendError
from worldtree.model.graph import ExecutionGraph, Node, Scope

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


@pytest.mark.slow  # a real server and two agent processes
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
    # the server's own collector leaves agent jobs alone (it would match the rule in its own workspace)
    assert not any("artifacts: collected" in line for _, line in lines), lines
    listed = server.get(f"/api/v1/runs/{run_id}/artifacts").json()["items"]
    by_path = {(a["job"], a["path"]): a for a in listed}
    assert ("make", "out/result.txt") in by_path and ("make", "out/sub/d.txt") in by_path, listed
    assert by_path[("make", "out/result.txt")]["size"] == len("result-42\n")
    content = server.get(f"/api/v1/artifacts/{by_path[('make', 'out/result.txt')]['id']}")
    assert content.content == b"result-42\n"

    # both RPCs are fenced by the job's lease: a job this caller does not hold is refused
    with grpc.insecure_channel(fleet.grpc) as channel:
        stub = agent_pb2_grpc.AgentServiceStub(channel)
        reg = stub.Register(apb.RegisterRequest(protocol_version=apb.PROTOCOL_VERSION_V1, name="probe", capacity=1),
                            timeout=10)
        md = [("x-worldtree-agent-secret", reg.session_secret)]
        with pytest.raises(grpc.RpcError) as up:
            stub.UploadArtifact(iter([apb.UploadArtifactRequest(agent_id=reg.agent_id, job_id="aj_nope",
                                                                 lease_token=1, path="out/x", data=b"x", last=True)]),
                                metadata=md, timeout=10)
        assert up.value.code() == grpc.StatusCode.FAILED_PRECONDITION, up.value
        with pytest.raises(grpc.RpcError) as down:
            list(stub.DownloadArtifacts(apb.DownloadArtifactsRequest(agent_id=reg.agent_id, job_id="aj_nope",
                                                                     lease_token=1), metadata=md, timeout=10))
        assert down.value.code() == grpc.StatusCode.FAILED_PRECONDITION, down.value
    assert len(server.get(f"/api/v1/runs/{run_id}/artifacts").json()["items"]) == 2


def test_downloads_stay_inside_the_workspace(tmp_path: Path) -> None:
    work = tmp_path / "ws"
    (work / "out").mkdir(parents=True)
    os.symlink(tmp_path, work / "link")
    assert target(str(work), "out/a.txt") == str((work / "out" / "a.txt").resolve())
    for bad in ("../x", "/etc/passwd", "out/../../x", "link/escaped", "", "."):
        with pytest.raises(BackendError):
            target(str(work), bad)


def test_uploads_happen_after_the_last_step_or_a_failure_as_when_says() -> None:
    def graph(when: str) -> ExecutionGraph:
        scope = Scope.model_validate({"id": "job:j", "kind": "job", "name": "j",
                                      "artifacts": {"paths": ["out/"], "when": when}})
        return ExecutionGraph(name="g", scopes={"job:j": scope}, nodes=[
            Node(id=f"j/{n}", path=f"j/{n}", name=n, job="j", command="true", scopes=["job:j"]) for n in ("a", "b")])

    assert rule_for(graph("on_success"), "j/a", failed=False) is None  # not the last step
    assert rule_for(graph("on_success"), "j/b", failed=False) is not None
    assert rule_for(graph("on_success"), "j/a", failed=True) is None
    assert rule_for(graph("on_failure"), "j/a", failed=True) is not None
    assert rule_for(graph("on_failure"), "j/b", failed=False) is None
    assert rule_for(graph("always"), "j/a", failed=True) is not None
