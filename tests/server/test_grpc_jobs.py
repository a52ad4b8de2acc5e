"""gRPC JobService end to end: a client built from the checked-in protos' stubs against a real
``worldtree server`` process (tokens on), SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from tests.server.conftest import Servers, free_port

from worldtree.api.agent.v1 import agent_pb2 as apb
from worldtree.api.job.v1 import job_pb2 as jpb
from worldtree.api.job.v1 import job_pb2_grpc

pytestmark = pytest.mark.slow


def _token(store: str, role: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORLDTREE_")}
    proc = subprocess.run([sys.executable, "-m", "worldtree.cli.main", "token", "create", "--role", role,
                           "--store", store], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture
def grpc_server(servers: Servers) -> Iterator[tuple[job_pb2_grpc.JobServiceStub, dict[str, str], Servers]]:
    port = free_port()
    servers(args=["--auth", "--grpc-port", str(port)])
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(channel).result(timeout=30)
    tokens = {role: _token(servers.store, role) for role in ("viewer", "maintainer")}
    yield job_pb2_grpc.JobServiceStub(channel), tokens, servers
    channel.close()


def _auth(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def _until(get: Callable[[], Any], ok: Callable[[Any], bool], seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = get()
        if ok(value):
            return value
        time.sleep(0.2)
    raise AssertionError(f"not there within {seconds} s: {value}")


def _code(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), str(info.value.details())


def test_create_get_log_cancel_and_errors(grpc_server: tuple[job_pb2_grpc.JobServiceStub, dict[str, str],
                                                              Servers]) -> None:
    stub, tokens, _ = grpc_server
    md = _auth(tokens["maintainer"])
    made = stub.CreateJob(jpb.CreateJobRequest(name="hello", commands=["echo hello-$WHO", "echo second line"],
                                               env={"WHO": "grpc"}), metadata=md)
    assert made.success and made.job_id == f"{made.job.run_id}:hello"
    assert made.job.status in (apb.JOB_STATUS_QUEUED, apb.JOB_STATUS_PENDING, apb.JOB_STATUS_RUNNING,
                               apb.JOB_STATUS_SUCCESS)
    viewer = _auth(tokens["viewer"])
    done = _until(lambda: stub.GetJob(jpb.GetJobRequest(job_id=made.job_id), metadata=viewer).job,
                  lambda job: job.status in (apb.JOB_STATUS_SUCCESS, apb.JOB_STATUS_FAILED))
    assert done.status == apb.JOB_STATUS_SUCCESS and done.exit_code == 0 and done.env["WHO"] == "grpc"
    assert list(done.commands) == ["echo hello-$WHO", "echo second line"]
    log = stub.GetJobLog(jpb.GetJobLogRequest(job_id=made.job_id), metadata=viewer)
    assert [c.content for c in log.logs] == ["hello-grpc", "second line"]
    assert log.total_lines == 2 and not log.has_more and log.logs[0].stream == apb.LOG_STREAM_STDOUT
    page = stub.GetJobLog(jpb.GetJobLogRequest(job_id=made.job_id, limit=1), metadata=viewer)
    assert [c.content for c in page.logs] == ["hello-grpc"] and page.has_more
    rest = stub.GetJobLog(jpb.GetJobLogRequest(job_id=made.job_id, offset=page.logs[0].line_number), metadata=viewer)
    assert [c.content for c in rest.logs] == ["second line"]

    slow = stub.CreateJob(jpb.CreateJobRequest(name="sleeper", stage="wait", commands=["sleep 30"]), metadata=md)
    assert slow.job_id.endswith(":wait.sleeper")
    _until(lambda: stub.GetJob(jpb.GetJobRequest(job_id=slow.job_id), metadata=viewer).job,
           lambda job: job.status == apb.JOB_STATUS_RUNNING)
    assert stub.CancelJob(jpb.CancelJobRequest(job_id=slow.job_id, reason="test"), metadata=md).success
    cancelled = _until(lambda: stub.GetJob(jpb.GetJobRequest(job_id=slow.job_id), metadata=viewer).job,
                       lambda job: job.status == apb.JOB_STATUS_CANCELLED, seconds=30)
    assert cancelled.steps[0].status == apb.JOB_STATUS_CANCELLED

    listed = stub.ListJobs(jpb.ListJobsRequest(page=jpb.PageRequest(page=1, page_size=1)), metadata=viewer)
    assert listed.page.total == 2 and len(listed.jobs) == 1 and listed.jobs[0].name == "sleeper"  # newest first
    by_status = stub.ListJobs(jpb.ListJobsRequest(status=apb.JOB_STATUS_SUCCESS), metadata=viewer)
    assert [j.job_id for j in by_status.jobs] == [made.job_id]
    retried = stub.RetryJob(jpb.RetryJobRequest(job_id=slow.job_id), metadata=md)
    assert retried.new_job_id == slow.job_id and "attempt 2" in retried.message
    again = _until(lambda: stub.GetJob(jpb.GetJobRequest(job_id=slow.job_id), metadata=viewer).job,
                   lambda job: job.status == apb.JOB_STATUS_RUNNING)
    assert again.attempt == 2
    # cancel once it runs: store.lifecycle.request_cancel reads, then updates; an executor claiming the
    # requeued run in between makes it refuse (409 / FAILED_PRECONDITION), a race outside JobService
    assert stub.CancelJob(jpb.CancelJobRequest(job_id=slow.job_id), metadata=md).success

    # errors: one status code per kind, with words a user can act on
    assert _code(lambda: stub.GetJob(jpb.GetJobRequest(job_id=made.job_id), metadata=_auth("wt_bogus")))[0] == \
        grpc.StatusCode.UNAUTHENTICATED
    assert _code(lambda: stub.GetJob(jpb.GetJobRequest(job_id=made.job_id)))[0] == grpc.StatusCode.UNAUTHENTICATED
    assert _code(lambda: stub.CreateJob(jpb.CreateJobRequest(name="x", commands=["true"]), metadata=viewer))[0] == \
        grpc.StatusCode.PERMISSION_DENIED
    code, words = _code(lambda: stub.GetJob(jpb.GetJobRequest(job_id=f"{made.job.run_id}:nope"), metadata=viewer))
    assert code == grpc.StatusCode.NOT_FOUND and "its jobs: hello" in words
    bad = apb.LabelSelector(match_expressions=[apb.LabelExpression(key="cpu", operator=apb.LABEL_OPERATOR_GT,
                                                                   values=["many"])])
    code, words = _code(lambda: stub.CreateJob(jpb.CreateJobRequest(name="x", commands=["true"], label_selector=bad),
                                               metadata=md))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "GT compares numbers, and 'many' is not a number" in words
    unknown_op = apb.LabelSelector(match_expressions=[apb.LabelExpression(key="cpu", operator=99, values=["1"])])
    code, words = _code(lambda: stub.CreateJob(jpb.CreateJobRequest(name="x", commands=["true"],
                                                                    label_selector=unknown_op), metadata=md))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "unknown operator '99'" in words  # was UNKNOWN (a crash)
    code, words = _code(lambda: stub.ListJobs(jpb.ListJobsRequest(  # by pipeline: was sliced with -1, no error
        pipeline_id="p", page=jpb.PageRequest(page=-1, page_size=5)), metadata=viewer))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "page must be 1 or more" in words
    code, words = _code(lambda: stub.GetJob(jpb.GetJobRequest(job_id="é" * 20000), metadata=viewer))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "more bytes" in words  # was RESOURCE_EXHAUSTED (8 KiB trailer)
    code, words = _code(lambda: stub.CreateJob(jpb.CreateJobRequest(name="x", commands=[]), metadata=md))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "commands is empty" in words
    assert _code(lambda: stub.UpdateJob(jpb.UpdateJobRequest(job_id=made.job_id), metadata=md))[0] == \
        grpc.StatusCode.UNIMPLEMENTED
    assert _code(lambda: stub.RetryJob(jpb.RetryJobRequest(job_id=made.job_id), metadata=md))[0] == \
        grpc.StatusCode.FAILED_PRECONDITION  # a succeeded run is not retried
    assert stub.DeleteJob(jpb.DeleteJobRequest(job_id=made.job_id), metadata=md).success
    assert _code(lambda: stub.GetJob(jpb.GetJobRequest(job_id=made.job_id), metadata=viewer))[0] == \
        grpc.StatusCode.NOT_FOUND


def test_pipelines_through_jobservice(grpc_server: tuple[job_pb2_grpc.JobServiceStub, dict[str, str],
                                                         Servers]) -> None:
    stub, tokens, _ = grpc_server
    md = _auth(tokens["maintainer"])
    source = "name: nightly\nstages:\n  - name: build\n    jobs:\n      - {name: a, steps: ['echo from-a']}\n"
    created = stub.CreatePipeline(jpb.CreatePipelineRequest(source=source), metadata=md)
    assert created.pipeline_id == "nightly" and [s.name for s in created.pipeline.stages] == ["build"]
    assert list(created.pipeline.stages[0].jobs) == ["a"]
    code, words = _code(lambda: stub.CreatePipeline(jpb.CreatePipelineRequest(name="bad", source="jobs: {a: {}}\n"),
                                                    metadata=md))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and ":1:" in words  # located, as a file's errors are
    run_id = stub.TriggerPipeline(jpb.TriggerPipelineRequest(pipeline_id="nightly"), metadata=md).run_id
    job = _until(lambda: stub.GetJob(jpb.GetJobRequest(job_id=f"{run_id}:build.a"), metadata=md).job,
                 lambda j: j.status == apb.JOB_STATUS_SUCCESS)
    assert job.pipeline_id == "nightly"
    got = stub.GetPipeline(jpb.GetPipelineRequest(pipeline_id="nightly"), metadata=md).pipeline
    assert got.last_run_id == run_id and got.stats.total_runs == 1 and got.source == source
    assert [p.name for p in stub.ListPipelines(jpb.ListPipelinesRequest(), metadata=md).pipelines] == ["nightly"]
    for extra in ("alpha", "beta"):  # by name: filtered before paging (a page was filtered after, total was not)
        stub.CreatePipeline(jpb.CreatePipelineRequest(name=extra, source=source.replace("nightly", extra)),
                            metadata=md)
    named = stub.ListPipelines(jpb.ListPipelinesRequest(name="night", page=jpb.PageRequest(page=1, page_size=1)),
                               metadata=md)
    assert [p.name for p in named.pipelines] == ["nightly"] and named.page.total == 1
    stopped = stub.StopPipeline(jpb.StopPipelineRequest(run_id="nightly"), metadata=md)
    assert stopped.message == "cancel requested for 0 run(s) of pipeline nightly"

    files = stub.CreateJob(jpb.CreateJobRequest(name="files", commands=["mkdir -p out", "printf hi > out/r.txt"],
                                                artifacts=jpb.ArtifactConfig(paths=["out/*"], expire_in="1d")),
                           metadata=md)
    _until(lambda: stub.GetJob(jpb.GetJobRequest(job_id=files.job_id), metadata=md).job,
           lambda j: j.status == apb.JOB_STATUS_SUCCESS)
    found = stub.ListJobArtifacts(jpb.ListJobArtifactsRequest(job_id=files.job_id), metadata=md).artifacts
    assert [(a.name, a.path, a.size) for a in found] == [("r.txt", "out/r.txt", 2)]
    assert found[0].expire_at_ms - found[0].created_at_ms == 86_400_000
