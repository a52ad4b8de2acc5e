"""Agent protocol hardening (issue 9 follow-ups): log gaps, per-agent session secrets, CancelJob.

A raw gRPC client (the checked-in stubs) against a real ``worldtree server --auth`` plays the
agent and an attacker holding the same shared token; the row rules are also checked on the store
directly. Both run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from sqlalchemy import update
from tests.agents.conftest import Fleet
from tests.server.test_server_auth import _token

from worldtree.api.agent.v1 import agent_pb2 as apb
from worldtree.api.agent.v1 import agent_pb2_grpc
from worldtree.api.job.v1 import stream_pb2, stream_pb2_grpc
from worldtree.app import agents
from worldtree.store import open_store
from worldtree.store.agents import AgentRows, engine_of
from worldtree.store.agents_tables import agents as agents_table
from worldtree.store.api import RunStore
from worldtree.store.schema import make_engine
from worldtree.testing.stores import pg_unavailable_reason, store_url

SECRET = "x-worldtree-agent-secret"


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    if request.param == "postgres" and (reason := pg_unavailable_reason()):
        pytest.skip(f"!!! PostgreSQL tests skipped: {reason}")
    with store_url(request.param, tmp_path) as url:
        opened = open_store(url)
        try:
            yield opened
        finally:
            opened.close()


def _claimed(store: RunStore) -> tuple[AgentRows, str, str, int]:
    rows = AgentRows(engine_of(store))
    run_id = store.create_run(name="n", source=None, workdir="/", graph_json="{}", options={})
    out = agents.register(store, protocol_version=agents.PROTOCOL_VERSION, agent_id=None, name="a", labels={},
                          capacity=1, host={})
    job_id = rows.create_job(run_id=run_id, attempt=1, job="j", selector=None, graph="{}")
    claimed = rows.claim(job_id, out["agent_id"], 30)
    assert claimed is not None
    return rows, out["agent_id"], job_id, claimed.lease_token


def _lines(*numbers: int) -> list[tuple[int, str, str, str]]:
    return [(n, "task-1", "stdout", f"line {n}") for n in numbers]


def test_the_ack_stays_at_a_gap_until_it_is_filled(store: RunStore) -> None:
    rows, agent_id, job_id, token = _claimed(store)
    assert rows.append_lines(agent_id, job_id, token, _lines(*range(1, 11))) == 10
    assert rows.append_lines(agent_id, job_id, token, _lines(13, 14, 15)) == 10  # 11..12 missing
    assert [r.line for r in rows.lines(job_id)] == list(range(1, 11))  # readers wait for the gap
    assert rows.append_lines(agent_id, job_id, token, _lines(11, 12, 13, 14, 15)) == 15  # the resend
    assert rows.append_lines(agent_id, job_id, token, _lines(14, 15, 17)) == 15  # dup + a new gap
    assert rows.append_lines(agent_id, job_id, token, _lines(16)) == 17
    assert [(r.line, r.content) for r in rows.lines(job_id)] == [(n, f"line {n}") for n in range(1, 18)]


def test_register_keeps_an_id_only_with_its_secret(store: RunStore) -> None:
    first = agents.register(store, protocol_version=agents.PROTOCOL_VERSION, agent_id=None, name="a", labels={},
                            capacity=1, host={})
    agent_id, secret = first["agent_id"], first["session_secret"]
    agents.check_secret(store, agent_id, secret)
    for wrong in (None, "", "guess", secret + "x"):
        with pytest.raises(agents.NotThisAgent):
            agents.check_secret(store, agent_id, wrong)
    with pytest.raises(LookupError):
        agents.check_secret(store, "agent-unknown", secret)
    stolen = agents.register(store, protocol_version=agents.PROTOCOL_VERSION, agent_id=agent_id, name="x",
                             labels={}, capacity=1, host={}, secret="guess")
    assert stolen["agent_id"] != agent_id  # the id is not taken over: the caller is another agent
    again = agents.register(store, protocol_version=agents.PROTOCOL_VERSION, agent_id=agent_id, name="a",
                            labels={}, capacity=1, host={}, secret=secret)
    assert again["agent_id"] == agent_id and again["session_secret"] != secret  # a reconnect: a new secret
    with pytest.raises(agents.NotThisAgent):
        agents.check_secret(store, agent_id, secret)
    agents.check_secret(store, agent_id, again["session_secret"])
    # only a digest is stored
    with engine_of(store).connect() as conn:
        stored = conn.execute(agents_table.select().where(agents_table.c.id == agent_id)).first()
    assert stored is not None and again["session_secret"] not in str(tuple(stored))


def test_cancel_of_an_unknown_task_is_not_found(store: RunStore) -> None:
    with pytest.raises(LookupError):
        agents.request_cancel(store, "task-nope", "x")


@pytest.mark.slow  # a real server process
def test_raw_client_log_gaps_secrets_and_cancel(fleet: Fleet) -> None:
    fleet.start_server("--auth")
    token = _token(fleet.servers, "maintainer")
    auth = [("authorization", f"Bearer {token}")]
    channel = grpc.insecure_channel(fleet.grpc)
    with channel:
        stub = agent_pb2_grpc.AgentServiceStub(channel)
        streams = stream_pb2_grpc.StreamServiceStub(channel)
        reg = stub.Register(apb.RegisterRequest(protocol_version=apb.PROTOCOL_VERSION_V1, name="victim",
                                                labels={"gpu": "true"}, capacity=1), metadata=auth, timeout=10)
        md = [*auth, (SECRET, reg.session_secret)]
        assert fleet.server is not None
        run_id = fleet.server.submit("name: g\njobs:\n  j: {labels: {gpu: 'true'}, steps: [echo hi]}\n",
                                     headers={"Authorization": f"Bearer {token}"})
        got = stub.FetchJob(apb.FetchJobRequest(agent_id=reg.agent_id, max_jobs=1, wait_seconds=10),
                            metadata=md, timeout=20)
        assert [j.name for j in got.jobs] == ["j"]
        job = got.jobs[0]
        tasks = list(got.tasks)
        if not tasks:  # the task may be queued a moment after the job
            tasks = list(stub.FetchJob(apb.FetchJobRequest(agent_id=reg.agent_id, max_jobs=0, wait_seconds=10),
                                       metadata=md, timeout=20).tasks)
        task = tasks[0]

        def send(*numbers: int) -> int:
            answer = stub.ReportJobLog(apb.ReportJobLogRequest(
                agent_id=reg.agent_id, job_id=job.job_id, lease_token=job.lease_token,
                logs=[apb.LogChunk(line_number=n, content=f"line {n}", task_id=task.task_id) for n in numbers]),
                metadata=md, timeout=10)
            return int(answer.acked_line_number)

        # 1. a gap holds the ack back; the resend fills it; nothing is stored twice
        assert send(*range(1, 11)) == 10
        assert send(13, 14, 15) == 10
        assert send(11, 12, 13, 14, 15) == 15
        upload = streams.UploadJobLog(iter([stream_pb2.UploadJobLogRequest(
            agent_id=reg.agent_id, job_id=job.job_id, lease_token=job.lease_token,
            logs=[apb.LogChunk(line_number=17, content="line 17", task_id=task.task_id)])]), metadata=md, timeout=10)
        assert upload.acked_line_number == 15
        assert send(16) == 17

        # 2. the same bearer token without the victim's secret cannot act for it
        for bad in (auth, [*auth, (SECRET, "guess")]):
            with pytest.raises(grpc.RpcError) as beat:
                stub.Heartbeat(apb.HeartbeatRequest(agent_id=reg.agent_id), metadata=bad, timeout=10)
            assert beat.value.code() == grpc.StatusCode.PERMISSION_DENIED, beat.value
            assert "session secret" in (beat.value.details() or "")
            with pytest.raises(grpc.RpcError) as report:
                stub.ReportJobStatus(apb.ReportJobStatusRequest(
                    agent_id=reg.agent_id, job_id=job.job_id, lease_token=job.lease_token, task_id=task.task_id,
                    status=apb.JOB_STATUS_FAILED, exit_code=1), metadata=bad, timeout=10)
            assert report.value.code() == grpc.StatusCode.PERMISSION_DENIED
            with pytest.raises(grpc.RpcError) as lines:
                stub.ReportJobLog(apb.ReportJobLogRequest(agent_id=reg.agent_id, job_id=job.job_id,
                                                          lease_token=job.lease_token, logs=[apb.LogChunk(
                                                              line_number=18, content="forged")]),
                                  metadata=bad, timeout=10)
            assert lines.value.code() == grpc.StatusCode.PERMISSION_DENIED
            with pytest.raises(grpc.RpcError) as chan:
                list(streams.AgentChannel(iter([stream_pb2.AgentChannelRequest(fetch=apb.FetchJobRequest(
                    agent_id=reg.agent_id, max_jobs=1))]), metadata=bad, timeout=10))
            assert chan.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # naming the victim's id at Register without its secret gives the caller another id
        other = stub.Register(apb.RegisterRequest(protocol_version=apb.PROTOCOL_VERSION_V1, agent_id=reg.agent_id,
                                                  name="attacker", labels={"gpu": "true"}, capacity=1),
                              metadata=auth, timeout=10)
        assert other.agent_id != reg.agent_id
        with pytest.raises(grpc.RpcError) as cross:  # its own secret is not the victim's
            stub.Heartbeat(apb.HeartbeatRequest(agent_id=reg.agent_id),
                           metadata=[*auth, (SECRET, other.session_secret)], timeout=10)
        assert cross.value.code() == grpc.StatusCode.PERMISSION_DENIED
        stub.Heartbeat(apb.HeartbeatRequest(agent_id=reg.agent_id), metadata=md, timeout=10)  # the victim still can

        # 3. CancelJob of an unknown agent, job or task is NOT_FOUND
        for request in (apb.CancelJobRequest(task_id="task-nope"),
                        apb.CancelJobRequest(agent_id="agent-nope", task_id=task.task_id),
                        apb.CancelJobRequest(job_id="job-nope", task_id=task.task_id),
                        apb.CancelJobRequest(agent_id=other.agent_id, job_id=job.job_id, task_id=task.task_id)):
            with pytest.raises(grpc.RpcError) as unknown:
                stub.CancelJob(request, metadata=auth, timeout=10)
            assert unknown.value.code() == grpc.StatusCode.NOT_FOUND, request

        stub.ReportJobStatus(apb.ReportJobStatusRequest(agent_id=reg.agent_id, job_id=job.job_id,
                                                        lease_token=job.lease_token, task_id=task.task_id,
                                                        status=apb.JOB_STATUS_SUCCESS, exit_code=0),
                             metadata=md, timeout=10)
        headers = {"Authorization": f"Bearer {token}"}
        fleet.wait_for(lambda: fleet.server is not None and fleet.server.get(
            f"/api/v1/runs/{run_id}", headers=headers).json()["state"] == "succeeded", timeout=30, message="run ends")
        logged = [x["line"] for x in fleet.server.get(f"/api/v1/runs/{run_id}/logs", headers=headers).json()["items"]]
        assert logged == [f"line {n}" for n in range(1, 18)]


@pytest.mark.slow  # a real server process
def test_an_agent_registers_again_when_the_server_forgot_its_secret(fleet: Fleet) -> None:
    fleet.start_server()
    agent = fleet.agent("a1")
    agent.wait_log("registered as")
    engine = make_engine(fleet.servers.store)
    try:
        with engine.begin() as conn:
            conn.execute(update(agents_table).values(secret_hash=None))
    finally:
        engine.dispose()
    agent.wait_log("registered again")
    assert fleet.registered(1)[0]["name"] == "a1"
    assert len(fleet.registered(1)) == 1  # the same id: its row was free to take again
