"""A gRPC client made from the checked-in stubs against a real server: auth, protocol version, leases.

The server runs with ``--auth`` (tokens from ``worldtree token create``), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from tests.agents.conftest import Fleet
from tests.server.test_server_auth import _token

from worldtree.api.agent.v1 import agent_pb2 as apb
from worldtree.api.agent.v1 import agent_pb2_grpc
from worldtree.api.job.v1 import stream_pb2, stream_pb2_grpc

pytestmark = pytest.mark.slow  # a real server process


def _stub(fleet: Fleet) -> tuple[grpc.Channel, agent_pb2_grpc.AgentServiceStub]:
    channel = grpc.insecure_channel(fleet.grpc)
    return channel, agent_pb2_grpc.AgentServiceStub(channel)


def _register(stub: agent_pb2_grpc.AgentServiceStub, token: str | None, **kw: object) -> apb.RegisterResponse:
    request = apb.RegisterRequest(protocol_version=kw.pop("version", apb.PROTOCOL_VERSION_V1),  # type: ignore[arg-type]
                                  name="probe", labels={"os": "linux"}, capacity=2,
                                  host=apb.HostInfo(hostname="h", os="linux", arch="amd64", cpus=2))
    metadata = [("authorization", f"Bearer {token}")] if token else []
    response: apb.RegisterResponse = stub.Register(request, metadata=metadata, timeout=10)
    return response


def test_tokens_protocol_version_heartbeats_and_fencing(fleet: Fleet) -> None:
    fleet.start_server("--auth")
    maintainer = _token(fleet.servers, "maintainer")
    viewer = _token(fleet.servers, "viewer")
    channel, stub = _stub(fleet)
    with channel:
        with pytest.raises(grpc.RpcError) as missing:
            _register(stub, None)
        assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "authorization: Bearer" in (missing.value.details() or "")
        with pytest.raises(grpc.RpcError) as bad:
            _register(stub, "wt_not-a-real-token")
        assert bad.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as low:
            _register(stub, viewer)
        assert low.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as old:
            _register(stub, maintainer, version=7)
        assert old.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "protocol version 7" in (old.value.details() or "")

        # the agent process says why it cannot register, and exits 2 instead of retrying forever
        env = {k: v for k, v in os.environ.items() if not k.startswith("WORLDTREE_")}
        refused = subprocess.run([sys.executable, "-m", "worldtree.cli.main", "agent", "--server", fleet.grpc,
                                  "--token", "wt_not-a-real-token", "--workdir", str(fleet.tmp / "refused")],
                                 env=env, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2, refused.stderr
        assert "refused registration: unknown or revoked token" in refused.stderr

        reg = _register(stub, maintainer)
        assert reg.agent_id.startswith("agent-") and reg.heartbeat_interval_seconds == 0.5
        assert len(reg.session_secret) >= 32
        md = [("authorization", f"Bearer {maintainer}"), ("x-worldtree-agent-secret", reg.session_secret)]
        beat = stub.Heartbeat(apb.HeartbeatRequest(agent_id=reg.agent_id, metrics=apb.AgentMetrics(cpu_percent=12.5),
                                                   leases=[apb.JobLease(job_id="job-unknown", lease_token=1)]),
                              metadata=md, timeout=10)
        assert list(beat.revoked_job_ids) == ["job-unknown"]  # a lease it does not hold is not renewed
        with pytest.raises(grpc.RpcError) as unknown:
            stub.Heartbeat(apb.HeartbeatRequest(agent_id="agent-nope"), metadata=md, timeout=10)
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
        labels = stub.UpdateLabels(apb.UpdateLabelsRequest(agent_id=reg.agent_id, labels={"gpu": "true"}, merge=True),
                                   metadata=md, timeout=10)
        assert dict(labels.labels) == {"os": "linux", "gpu": "true"}

        # A job selected for this agent: claimed over AgentChannel, then the token fences reports.
        assert fleet.server is not None
        run_id = fleet.server.submit("name: g\njobs:\n  j: {labels: {gpu: 'true'}, steps: [echo hi]}\n",
                                     headers={"Authorization": f"Bearer {maintainer}"})
        streams = stream_pb2_grpc.StreamServiceStub(channel)

        def talk() -> list[stream_pb2.AgentChannelResponse]:
            requests = [stream_pb2.AgentChannelRequest(hello=stream_pb2.AgentHello(
                            agent_id=reg.agent_id, protocol_version=apb.PROTOCOL_VERSION_V1)),
                        stream_pb2.AgentChannelRequest(fetch=apb.FetchJobRequest(
                            agent_id=reg.agent_id, max_jobs=1, wait_seconds=10))]
            return list(streams.AgentChannel(iter(requests), metadata=md, timeout=20))

        answers = talk()
        assert answers[0].WhichOneof("payload") == "config_update"
        got = answers[1].assignment
        assert [j.name for j in got.jobs] == ["j"] and got.jobs[0].lease_token == 1
        job = got.jobs[0]
        tasks = list(got.tasks)
        if not tasks:  # the task may be queued a moment after the job
            tasks = list(stub.FetchJob(apb.FetchJobRequest(agent_id=reg.agent_id, max_jobs=0, wait_seconds=10),
                                       metadata=md, timeout=20).tasks)
        assert tasks and tasks[0].commands == ["echo hi"]
        task = tasks[0]
        with pytest.raises(grpc.RpcError) as stale:
            stub.ReportJobStatus(apb.ReportJobStatusRequest(agent_id=reg.agent_id, job_id=job.job_id,
                                                            lease_token=job.lease_token + 5, task_id=task.task_id,
                                                            status=apb.JOB_STATUS_SUCCESS), metadata=md, timeout=10)
        assert stale.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        log = stub.ReportJobLog(apb.ReportJobLogRequest(
            agent_id=reg.agent_id, job_id=job.job_id, lease_token=job.lease_token,
            logs=[apb.LogChunk(line_number=n, content=f"line {n}", task_id=task.task_id) for n in (1, 2)]),
            metadata=md, timeout=10)
        assert log.acked_line_number == 2
        again = stub.ReportJobLog(apb.ReportJobLogRequest(  # a resend after a reconnect: no duplicate
            agent_id=reg.agent_id, job_id=job.job_id, lease_token=job.lease_token,
            logs=[apb.LogChunk(line_number=n, content=f"line {n}", task_id=task.task_id) for n in (2, 3)]),
            metadata=md, timeout=10)
        assert again.acked_line_number == 3
        stub.ReportJobStatus(apb.ReportJobStatusRequest(agent_id=reg.agent_id, job_id=job.job_id,
                                                        lease_token=job.lease_token, task_id=task.task_id,
                                                        status=apb.JOB_STATUS_SUCCESS, exit_code=0),
                             metadata=md, timeout=10)
        auth = {"Authorization": f"Bearer {maintainer}"}
        fleet.wait_for(lambda: fleet.server is not None and fleet.server.get(
            f"/api/v1/runs/{run_id}", headers=auth).json()["state"] == "succeeded", timeout=30, message="run ends")
        lines = [x["line"] for x in fleet.server.get(f"/api/v1/runs/{run_id}/logs", headers=auth).json()["items"]]
        assert lines == ["line 1", "line 2", "line 3"]

        # the job's lines, as StreamJobLog gives them; an upload after the job ended is refused
        chunks = [c for answer in streams.StreamJobLog(stream_pb2.StreamJobLogRequest(job_id=job.job_id),
                                                       metadata=md, timeout=10) for c in answer.logs]
        assert [(c.line_number, c.content) for c in chunks] == [(1, "line 1"), (2, "line 2"), (3, "line 3")]
        with pytest.raises(grpc.RpcError) as late:
            streams.UploadJobLog(iter([stream_pb2.UploadJobLogRequest(
                agent_id=reg.agent_id, job_id=job.job_id, lease_token=job.lease_token,
                logs=[apb.LogChunk(line_number=4, content="late", task_id=task.task_id)])]), metadata=md, timeout=10)
        assert late.value.code() == grpc.StatusCode.FAILED_PRECONDITION

        # reflection lists the services without a token
        reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
        answer = next(iter(reflect.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(
            list_services="")]), timeout=10)))
        names = {s.name for s in answer.list_services_response.service}
        assert {"worldtree.agent.v1.AgentService", "worldtree.job.v1.StreamService"} <= names
