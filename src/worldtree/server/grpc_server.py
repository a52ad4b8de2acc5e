"""The gRPC server: AgentService, StreamService's agent-facing RPCs, and JobService when it exists.

``worldtree server --grpc-port`` starts it beside uvicorn in the same process, over the same store
and application functions (:mod:`worldtree.app.agents`); handlers only translate protobuf to calls
and errors to status codes. The token travels as ``authorization: Bearer <token>`` metadata and is
checked by :class:`_Auth` with :mod:`worldtree.app.tokens` (agents need the maintainer role;
``--no-auth`` on loopback lets everything through). Reflection is on, so ``grpcurl`` lists it.

Status codes: UNAUTHENTICATED (no or bad token), PERMISSION_DENIED (role too low),
FAILED_PRECONDITION (another protocol version; a report with a stale lease token), NOT_FOUND
(unknown agent: register again; CancelJob of an unknown agent, job or task), INVALID_ARGUMENT (bad
labels, capacity), PERMISSION_DENIED also when a call names an agent without that agent's session
secret (``x-worldtree-agent-secret`` metadata, issued by Register): the shared token alone does not
let one agent act as another.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any, TypeVar

import grpc
from grpc_reflection.v1alpha import reflection

from worldtree.api.agent.v1 import agent_pb2 as apb
from worldtree.api.agent.v1 import agent_pb2_grpc
from worldtree.api.job.v1 import job_pb2, stream_pb2, stream_pb2_grpc
from worldtree.app import agents, tokens
from worldtree.errors import StoreError, UsageError
from worldtree.server import agent_artifacts_rpc
from worldtree.store.agents import JobRow, TaskRow
from worldtree.store.api import RunStore

log = logging.getLogger("worldtree.grpc")
T = TypeVar("T")

_STREAMS = {"stdout": apb.LOG_STREAM_STDOUT, "stderr": apb.LOG_STREAM_STDERR, "system": apb.LOG_STREAM_SYSTEM}
_STREAM_NAMES = {v: k for k, v in _STREAMS.items()}
#: RPCs a viewer token may call (everything else an agent does needs maintainer)
_VIEWER_METHODS = ("/worldtree.job.v1.StreamService/StreamJobLog", "/grpc.reflection.")


def _guard(context: grpc.ServicerContext, body: Callable[[], T]) -> T:
    """Run ``body``; our errors become status codes (``context.abort`` raises)."""
    try:
        return body()
    except agents.ProtocolMismatch as exc:
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
    except agents.NotThisAgent as exc:
        context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
    except UsageError as exc:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    except LookupError as exc:
        context.abort(grpc.StatusCode.NOT_FOUND, str(exc.args[0] if exc.args else exc))
    except StoreError as exc:
        context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
    raise AssertionError("unreachable")  # context.abort always raises


def _secret(context: grpc.ServicerContext) -> str | None:
    value = dict(context.invocation_metadata() or ()).get(agents.SECRET_METADATA)
    return str(value) if value else None


def gate(store: RunStore, context: grpc.ServicerContext, agent_id: str) -> None:
    """Abort unless the call carries the session secret of the agent it names (see module doc)."""
    _guard(context, lambda: agents.check_secret(store, agent_id, _secret(context)))


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def job_message(job: JobRow) -> apb.Job:
    return apb.Job(job_id=job.id, run_id=job.run_id, attempt=job.attempt, name=job.job, lease_token=job.lease_token,
                   status=apb.JOB_STATUS_RUNNING, graph_json=job.graph)


def task_message(task: TaskRow, job: JobRow, secrets: dict[str, str]) -> apb.Task:
    env = dict(task.env)
    env.update({k: v for k, v in secrets.items() if not k.startswith("__mask_")})
    return apb.Task(task_id=task.id, job_id=job.id, node_json=task.node, env=env, secrets=sorted(set(secrets.values())),
                    try_number=task.try_number, purpose=task.purpose, precheck=task.purpose == "precheck",
                    commands=[task.command], step=task.node, workdir=task.workdir or "")


class AgentService(agent_pb2_grpc.AgentServiceServicer):
    def __init__(self, store: RunStore, settings: agents.AgentSettings) -> None:
        self.store = store
        self.settings = settings

    def Register(self, request: apb.RegisterRequest, context: grpc.ServicerContext) -> apb.RegisterResponse:
        host = request.host
        info = {"hostname": host.hostname, "os": host.os, "arch": host.arch, "cpus": host.cpus,
                "memory_bytes": host.memory_bytes, "ip": host.ip or _peer_ip(context), "version": host.version}
        out = _guard(context, lambda: agents.register(
            self.store, protocol_version=int(request.protocol_version), agent_id=request.agent_id or None,
            name=request.name or host.hostname or "agent", labels=dict(request.labels),
            capacity=request.capacity or 1, host=info, settings=self.settings, secret=_secret(context)))
        return apb.RegisterResponse(success=True, message="registered", agent_id=out["agent_id"],
                                    heartbeat_interval_seconds=out["heartbeat_interval_seconds"],
                                    labels=out["labels"], protocol_version=apb.PROTOCOL_VERSION_V1,
                                    lease_seconds=out["lease_seconds"], session_secret=out["session_secret"])

    def Unregister(self, request: apb.UnregisterRequest, context: grpc.ServicerContext) -> apb.UnregisterResponse:
        gate(self.store, context, request.agent_id)
        found = _guard(context, lambda: agents.unregister(self.store, request.agent_id))
        return apb.UnregisterResponse(success=found, message="unregistered" if found else "unknown agent")

    def Heartbeat(self, request: apb.HeartbeatRequest, context: grpc.ServicerContext) -> apb.HeartbeatResponse:
        gate(self.store, context, request.agent_id)
        metrics = _metrics(request.metrics) if request.HasField("metrics") else None
        revoked = _guard(context, lambda: agents.heartbeat(
            self.store, request.agent_id, metrics=metrics, labels=dict(request.labels),
            leases=[(lease.job_id, lease.lease_token) for lease in request.leases],
            draining=request.draining or None, settings=self.settings))
        if revoked is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no agent {request.agent_id}: register again")
        return apb.HeartbeatResponse(success=True, revoked_job_ids=revoked,
                                     heartbeat_interval_seconds=self.settings.heartbeat_seconds)

    def UpdateLabels(self, request: apb.UpdateLabelsRequest, context: grpc.ServicerContext) -> apb.UpdateLabelsResponse:
        gate(self.store, context, request.agent_id)
        labels = _guard(context, lambda: agents.update_labels(self.store, request.agent_id, dict(request.labels),
                                                              merge=request.merge))
        return apb.UpdateLabelsResponse(success=True, labels=labels)

    def FetchJob(self, request: apb.FetchJobRequest, context: grpc.ServicerContext) -> apb.FetchJobResponse:
        return fetch_response(self.store, self.settings, request, context)

    def ReportJobStatus(self, request: apb.ReportJobStatusRequest,
                        context: grpc.ServicerContext) -> apb.ReportJobStatusResponse:
        ok = report_status(self.store, request, context)
        if not ok:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f"stale lease token {request.lease_token} for job {request.job_id}: "
                          "this agent no longer holds it; its report is refused")
        return apb.ReportJobStatusResponse(success=True, message="recorded")

    def ReportJobLog(self, request: apb.ReportJobLogRequest, context: grpc.ServicerContext) -> apb.ReportJobLogResponse:
        acked = report_log(self.store, request.agent_id, request.job_id, request.lease_token, request.logs, context)
        if acked is None:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f"stale lease token {request.lease_token} for job {request.job_id}: lines refused")
        return apb.ReportJobLogResponse(success=True, acked_line_number=acked or 0)

    def UploadArtifact(self, request_iterator: Iterator[apb.UploadArtifactRequest],
                       context: grpc.ServicerContext) -> apb.UploadArtifactResponse:
        """One file of a job's artifacts (see :mod:`worldtree.app.agent_artifacts`)."""
        first = next(request_iterator, None)
        if first is None:
            return agent_artifacts_rpc.upload(self.store, iter(()), context, _guard)
        gate(self.store, context, first.agent_id)
        return agent_artifacts_rpc.upload(self.store, itertools.chain([first], request_iterator), context, _guard)

    def DownloadArtifacts(self, request: apb.DownloadArtifactsRequest,
                          context: grpc.ServicerContext) -> Iterator[apb.DownloadArtifactsResponse]:
        """The artifacts of the jobs the job needs, file after file, in chunks."""
        gate(self.store, context, request.agent_id)
        yield from agent_artifacts_rpc.download(self.store, request, context, _guard)

    def CancelJob(self, request: apb.CancelJobRequest, context: grpc.ServicerContext) -> apb.CancelJobResponse:
        """An agent (or a tool) asks to stop a task of a job; the agent hears it at its next fetch.

        NOT_FOUND when the agent, job or task it names does not exist (it used to answer success).
        """
        def body() -> None:
            rows = agents.rows_of(self.store)
            if request.agent_id and rows.get(request.agent_id) is None:
                raise LookupError(f"no agent {request.agent_id}")
            if request.job_id:
                job = rows.job(request.job_id)
                if job is None or (request.agent_id and job.agent_id != request.agent_id):
                    held = f" held by agent {request.agent_id}" if request.agent_id else ""
                    raise LookupError(f"no agent job {request.job_id}{held}")
            if not request.task_id:
                raise UsageError("CancelJob needs the task_id of the step to stop")
            agents.request_cancel(self.store, request.task_id, request.reason or "cancelled",
                                  request.job_id or None)
        _guard(context, body)
        return apb.CancelJobResponse(success=True, message="stop requested")


def _peer_ip(context: grpc.ServicerContext) -> str:
    peer = context.peer() or ""
    return peer.split(":", 1)[1].rsplit(":", 1)[0] if ":" in peer else peer


def _metrics(m: apb.AgentMetrics) -> dict[str, Any]:
    return {"cpu_percent": m.cpu_percent, "memory_percent": m.memory_percent, "disk_percent": m.disk_percent,
            "memory_used_bytes": m.memory_used_bytes, "memory_total_bytes": m.memory_total_bytes,
            "disk_used_bytes": m.disk_used_bytes, "disk_total_bytes": m.disk_total_bytes,
            "load_average": m.load_average}


def fetch_response(store: RunStore, settings: agents.AgentSettings, request: apb.FetchJobRequest,
                   context: grpc.ServicerContext) -> apb.FetchJobResponse:
    gate(store, context, request.agent_id)
    held = [lease.job_id for lease in request.leases]
    got = _guard(context, lambda: agents.fetch(store, request.agent_id, max_jobs=request.max_jobs,
                                               wait_seconds=request.wait_seconds, held=held, settings=settings))
    return apb.FetchJobResponse(success=True, jobs=[job_message(j) for j in got.jobs],
                                tasks=[task_message(t, j, s) for t, j, s in got.tasks],
                                cancel_task_ids=got.stop, done_job_ids=got.ended)


def report_status(store: RunStore, request: apb.ReportJobStatusRequest, context: grpc.ServicerContext) -> bool:
    gate(store, context, request.agent_id)
    stopped = request.status == apb.JOB_STATUS_CANCELLED
    exit_code = None if (request.error_message or stopped) and request.exit_code < 0 else request.exit_code
    return _guard(context, lambda: agents.report_status(
        store, request.agent_id, job_id=request.job_id, token=request.lease_token, task_id=request.task_id,
        exit_code=exit_code, error=request.error_message or None, stopped=stopped))


def report_log(store: RunStore, agent_id: str, job_id: str, token: int, logs: Any,
               context: grpc.ServicerContext) -> int | None:
    gate(store, context, agent_id)
    lines = [(c.line_number, c.task_id, _STREAM_NAMES.get(c.stream, "stdout"), c.content) for c in logs]
    return _guard(context, lambda: agents.report_log(store, agent_id, job_id=job_id, token=token, lines=lines))


class StreamService(stream_pb2_grpc.StreamServiceServicer):
    """The agent-facing streams: AgentChannel, UploadJobLog; and StreamJobLog for followers."""

    def __init__(self, store: RunStore, settings: agents.AgentSettings) -> None:
        self.store = store
        self.settings = settings
        self.agent_service = AgentService(store, settings)

    def AgentChannel(self, request_iterator: Iterator[stream_pb2.AgentChannelRequest],
                     context: grpc.ServicerContext) -> Iterator[stream_pb2.AgentChannelResponse]:
        """Each message up is answered in order; a ``fetch`` waits (long-poll) until work is assigned."""
        svc = self.agent_service
        for msg in request_iterator:
            kind = msg.WhichOneof("payload")
            if kind == "hello":
                if int(msg.hello.protocol_version) != agents.PROTOCOL_VERSION:
                    context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                  f"agent speaks protocol version {int(msg.hello.protocol_version)}, this server "
                                  f"speaks {agents.PROTOCOL_VERSION}")
                if msg.hello.agent_id:
                    gate(self.store, context, msg.hello.agent_id)
                yield stream_pb2.AgentChannelResponse(config_update=stream_pb2.ConfigUpdate(
                    heartbeat_interval_seconds=self.settings.heartbeat_seconds,
                    lease_seconds=self.settings.lease_seconds))
            elif kind == "heartbeat":
                yield stream_pb2.AgentChannelResponse(heartbeat_ack=svc.Heartbeat(msg.heartbeat, context))
            elif kind == "fetch":
                yield stream_pb2.AgentChannelResponse(
                    assignment=fetch_response(self.store, self.settings, msg.fetch, context))
            elif kind == "status":
                ok = report_status(self.store, msg.status, context)
                yield stream_pb2.AgentChannelResponse(status_ack=stream_pb2.StatusAck(
                    job_id=msg.status.job_id, task_id=msg.status.task_id, accepted=ok,
                    message="recorded" if ok else "stale lease token: refused"))
            elif kind == "log_data":
                d = msg.log_data
                acked = report_log(self.store, d.agent_id, d.job_id, d.lease_token, d.logs, context)
                yield stream_pb2.AgentChannelResponse(log_ack=stream_pb2.LogAck(
                    job_id=d.job_id, acked_line_number=acked or 0, accepted=acked is not None,
                    message="" if acked is not None else "stale lease token: refused"))
            elif kind == "metrics":
                continue

    def UploadJobLog(self, request_iterator: Iterator[stream_pb2.UploadJobLogRequest],
                     context: grpc.ServicerContext) -> stream_pb2.UploadJobLogResponse:
        acked, received = 0, 0
        for msg in request_iterator:
            got = report_log(self.store, msg.agent_id, msg.job_id, msg.lease_token, msg.logs, context)
            if got is None:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                              f"stale lease token {msg.lease_token} for job {msg.job_id}: lines refused")
            acked, received = got or 0, received + len(msg.logs)
        return stream_pb2.UploadJobLogResponse(success=True, acked_line_number=acked, lines_received=received)

    def StreamJobLog(self, request: stream_pb2.StreamJobLogRequest,
                     context: grpc.ServicerContext) -> Iterator[stream_pb2.StreamJobLogResponse]:
        """An agent job's lines from ``from_line``; with ``follow`` until the job is over."""
        rows = agents.rows_of(self.store)
        after = request.from_line
        while context.is_active():
            lines = rows.lines(request.job_id, after)
            job = rows.job(request.job_id)
            if job is None:
                context.abort(grpc.StatusCode.NOT_FOUND, f"no agent job {request.job_id}")
                return
            if lines:
                after = lines[-1].line
                yield stream_pb2.StreamJobLogResponse(logs=[apb.LogChunk(
                    line_number=r.line, content=r.content, stream=_STREAMS.get(r.stream, apb.LOG_STREAM_STDOUT),
                    task_id=r.task_id) for r in lines])
                continue
            if not request.follow or job.state in ("done", "lost"):
                yield stream_pb2.StreamJobLogResponse(finished=job.state in ("done", "lost"))
                return
            time.sleep(0.1)


def _abort_handler(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, details: str) -> grpc.RpcMethodHandler:
    def unary(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(code, details)

    def streaming(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        context.abort(code, details)
        yield None  # pragma: no cover

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(streaming)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(unary)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(streaming)
    return grpc.unary_unary_rpc_method_handler(unary)


class _Auth(grpc.ServerInterceptor):
    """``authorization: Bearer <token>`` checked against the token store; role by method."""

    def __init__(self, store: RunStore, enabled: bool) -> None:
        self.store = store
        self.enabled = enabled

    def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
                          handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if not self.enabled or handler is None:
            return handler
        method = handler_call_details.method
        if method.startswith("/grpc.reflection."):
            return handler
        metadata = dict(handler_call_details.invocation_metadata or ())
        value = str(metadata.get("authorization", ""))
        scheme, _, token = value.partition(" ")
        if not value:
            return _abort_handler(handler, grpc.StatusCode.UNAUTHENTICATED,
                                  "no token: send `authorization: Bearer <token>` metadata "
                                  "(create one with `worldtree token create --role maintainer`)")
        if scheme.lower() != "bearer" or not token.strip():
            return _abort_handler(handler, grpc.StatusCode.UNAUTHENTICATED,
                                  "authorization metadata must be `Bearer <token>`")
        try:
            record = tokens.authenticate(self.store, token.strip())
        except StoreError as exc:
            return _abort_handler(handler, grpc.StatusCode.UNAVAILABLE, str(exc))
        if record is None:
            return _abort_handler(handler, grpc.StatusCode.UNAUTHENTICATED, "unknown or revoked token")
        needed = "viewer" if method.startswith(_VIEWER_METHODS) or "/Get" in method or "/List" in method \
            or "/Stream" in method else "maintainer"
        if method.startswith("/worldtree.job.v1.StreamService/AgentChannel") or \
                method.startswith("/worldtree.job.v1.StreamService/UploadJobLog"):
            needed = "maintainer"
        if not tokens.allows(record.role, needed):
            return _abort_handler(handler, grpc.StatusCode.PERMISSION_DENIED,
                                  f"{method.rsplit('/', 1)[-1]} needs the {needed} role; this token is {record.role}")
        return handler


def _mount_jobs(server: grpc.Server, store: RunStore) -> str | None:
    """B's JobService (``server/grpc_jobs.py``), when it is there; its full service name."""
    try:
        from worldtree.server import grpc_jobs  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return None
    from worldtree.api.job.v1 import job_pb2_grpc

    add = getattr(grpc_jobs, "add_to_server", None)
    if callable(add):
        add(server, store)
        return str(job_pb2.DESCRIPTOR.services_by_name["JobService"].full_name)
    for name in ("JobService", "JobServicer", "JobServiceImpl"):
        cls = getattr(grpc_jobs, name, None)
        if isinstance(cls, type) and cls is not job_pb2_grpc.JobServiceServicer:
            job_pb2_grpc.add_JobServiceServicer_to_server(cls(store), server)
            return str(job_pb2.DESCRIPTOR.services_by_name["JobService"].full_name)
    return None


def start(store: RunStore, *, host: str, port: int, auth: bool, settings: agents.AgentSettings | None = None,
          tls_cert: str | None = None, tls_key: str | None = None, max_workers: int = 256) -> tuple[grpc.Server, int]:
    """Start serving; (server, bound port). ``port`` 0 picks a free one."""
    settings = settings or agents.AgentSettings.from_env()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="worldtree-grpc"),
                         interceptors=[_Auth(store, auth)],
                         options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)])
    agent_pb2_grpc.add_AgentServiceServicer_to_server(AgentService(store, settings), server)
    stream_pb2_grpc.add_StreamServiceServicer_to_server(StreamService(store, settings), server)
    names = [apb.DESCRIPTOR.services_by_name["AgentService"].full_name,
             stream_pb2.DESCRIPTOR.services_by_name["StreamService"].full_name]
    jobs = _mount_jobs(server, store)
    if jobs:
        names.append(jobs)
        server._worldtree_jobs = True
    reflection.enable_server_reflection([*names, reflection.SERVICE_NAME], server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if tls_cert and tls_key:
        with open(tls_key, "rb") as key, open(tls_cert, "rb") as cert:
            credentials = grpc.ssl_server_credentials([(key.read(), cert.read())])
        bound = server.add_secure_port(address, credentials)
    else:
        bound = server.add_insecure_port(address)
    if not bound:
        raise UsageError(f"cannot listen for gRPC on {address}: the port is taken or the address is not local; "
                         "pick another with --grpc-port (0 picks a free one)")
    server.start()
    log.info("gRPC on %s:%d", host, bound)
    return server, bound


def start_for_app(store: RunStore, settings: Any) -> grpc.Server | None:
    """Start gRPC for ``worldtree server`` (ServerSettings); prints the bound address on stderr."""
    import sys

    port = getattr(settings, "grpc_port", None)
    if port is None:
        return None
    host = getattr(settings, "grpc_host", "127.0.0.1")
    try:
        server, bound = start(store, host=host, port=port, auth=bool(settings.auth),
                              tls_cert=getattr(settings, "grpc_tls_cert", None),
                              tls_key=getattr(settings, "grpc_tls_key", None))
    except UsageError as exc:
        if not getattr(settings, "grpc_optional", False):
            raise
        print(f"worldtree: no gRPC: {exc}", file=sys.stderr, flush=True)
        return None
    shown = f"[{host}]" if ":" in host else host
    print(f"worldtree gRPC on {shown}:{bound} (AgentService, StreamService"
          f"{', JobService' if _has_jobs(server) else ''}; reflection on)", file=sys.stderr, flush=True)
    return server


def _has_jobs(server: grpc.Server) -> bool:
    return bool(getattr(server, "_worldtree_jobs", False))


def stop(server: grpc.Server | None, grace: float = 1.0) -> None:
    if server is not None:
        server.stop(grace).wait(grace + 1.0)
