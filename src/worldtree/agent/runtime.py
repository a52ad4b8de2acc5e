"""The agent process: register, heartbeat, take jobs over AgentChannel, run their steps, stream logs.

One asyncio loop. A *session* is one connection to the server: Register (with host info, labels,
capacity and the protocol version), then three loops until one fails: heartbeats (metrics, and the
leases of every job held, which the server renews; jobs it no longer grants are dropped at once),
the AgentChannel (a ``fetch`` that the server answers when it assigns jobs or tasks, asks for a
stop, or says a job ended), and the log flusher. When the connection breaks (server restart,
another replica), the session is retried with backoff; held jobs keep running meanwhile, their
unacknowledged lines stay buffered and are resent (the server drops lines it already has), and
reports wait until they go through or the lease is refused.

Each claimed job gets a workspace ``<workdir>/<job id>``; each task runs one command of one node
with the local backends (host, docker, ssh) exactly as ``worldtree run`` would. Output is masked
with the task's secrets, numbered per job, and sent in batches (every 0.2 s, or at 1 MiB). A
cancelled task's process tree is stopped by the backend (SIGTERM, then SIGKILL after the grace).
SIGTERM drains: no new jobs, the held ones finish, then the agent unregisters and exits; a second
SIGTERM exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio

from worldtree import __version__
from worldtree.agent import artifacts
from worldtree.api.agent.v1 import agent_pb2 as apb
from worldtree.api.agent.v1 import agent_pb2_grpc
from worldtree.api.job.v1 import stream_pb2, stream_pb2_grpc
from worldtree.backends.base import Backend, RunContext, StepRequest
from worldtree.engine.environment import runner_env
from worldtree.engine.masking import Masker
from worldtree.errors import BackendError, WorldtreeError
from worldtree.model.graph import ExecutionGraph

PROTOCOL_VERSION = apb.PROTOCOL_VERSION_V1
#: metadata carrying the session secret (the server's ``worldtree.app.agents.SECRET_METADATA``)
SECRET_METADATA = "x-worldtree-agent-secret"
#: a log batch is sent at least this often, or when it reaches ``FLUSH_BYTES``
FLUSH_SECONDS = 0.2
FLUSH_BYTES = 1 << 20
_STREAMS = {"stdout": apb.LOG_STREAM_STDOUT, "stderr": apb.LOG_STREAM_STDERR}


class AgentFatal(WorldtreeError):
    """A refusal retrying cannot fix (bad token, another protocol version)."""


@dataclass
class AgentConfig:
    server: str
    token: str | None
    labels: dict[str, str]
    capacity: int = 1
    name: str | None = None
    workdir: str = ".worldtree-agent"
    tls: bool = False
    ca_file: str | None = None
    #: how long one fetch waits on the server for work
    fetch_wait: float = 5.0
    grace_seconds: float = 5.0


@dataclass
class _Held:
    """A job this agent holds: its lease token, graph, workspace, backends, tasks and log buffer."""

    job_id: str
    run_id: str
    attempt: int
    name: str
    token: int
    graph: ExecutionGraph
    workspace: str
    ctx: RunContext
    backends: dict[str, Backend] = field(default_factory=dict)
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    next_line: int = 1
    acked: int = 0
    buffer: list[apb.LogChunk] = field(default_factory=list)
    buffered_bytes: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    ended: bool = False
    revoked: bool = False
    #: the artifacts of the jobs this one needs are in the workspace (downloaded before its first step)
    restored: bool = False
    restore_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def say(message: str) -> None:
    print(f"worldtree agent: {message}", file=sys.stderr, flush=True)


def host_info() -> apb.HostInfo:
    import psutil

    try:
        ip = socket.gethostbyname(socket.gethostname())
    except OSError:
        ip = ""
    machine = platform.machine().lower()
    return apb.HostInfo(hostname=socket.gethostname(), os=platform.system().lower(),
                        arch={"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine),
                        cpus=os.cpu_count() or 1, memory_bytes=int(psutil.virtual_memory().total), ip=ip,
                        version=__version__)


def metrics(path: str) -> apb.AgentMetrics:
    import psutil

    mem = psutil.virtual_memory()
    try:
        disk = psutil.disk_usage(path)
        disk_used, disk_total, disk_pct = int(disk.used), int(disk.total), float(disk.percent)
    except OSError:
        disk_used = disk_total = 0
        disk_pct = 0.0
    return apb.AgentMetrics(cpu_percent=psutil.cpu_percent(None), memory_percent=float(mem.percent),
                            disk_percent=disk_pct, memory_used_bytes=int(mem.used),
                            memory_total_bytes=int(mem.total), disk_used_bytes=disk_used,
                            disk_total_bytes=disk_total, load_average=os.getloadavg()[0])


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.workdir = os.path.abspath(config.workdir)
        self.agent_id = ""
        self.heartbeat_seconds = 10.0
        self.jobs: dict[str, _Held] = {}
        self.draining = False
        self.stopping = False
        self._stop = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()
        self._auth: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {config.token}"),) if config.token else ())
        #: the session secret Register gave (memory only): every call naming this agent carries it
        self.secret = ""

    @property
    def _metadata(self) -> tuple[tuple[str, str], ...]:
        """The token, and this agent's session secret once registered (``x-worldtree-agent-secret``)."""
        return (*self._auth, (SECRET_METADATA, self.secret)) if self.secret else self._auth

    def _forget(self, *, keep_id: bool) -> None:
        """The server does not know this agent (or its secret) any more: the next session registers again.

        With ``keep_id`` (the server forgot only the secret) Register names the old id: the server
        gives it back when it holds no secret for it, and a new id otherwise.
        """
        if not keep_id:
            self.agent_id = ""
        self.secret = ""

    # -- lifecycle ------------------------------------------------------------------------------------
    async def run(self) -> int:
        os.makedirs(self.workdir, exist_ok=True)
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, self._on_sigterm)
            loop.add_signal_handler(signal.SIGINT, self._on_sigterm)
        backoff = 0.2
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                await self._session()
            except AgentFatal as exc:
                say(f"error: {exc}")
                await self._abandon_all()
                return 2
            except (grpc.aio.AioRpcError, ConnectionError, OSError) as exc:
                if self._stop.is_set():
                    break
                detail = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
                say(f"connection to {self.config.server} lost ({detail}); retrying in {backoff:.1f} s")
            if time.monotonic() - started > 10:
                backoff = 0.2
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), backoff)
            backoff = min(backoff * 2, 5.0)
        await self._abandon_all()
        return 0

    def _on_sigterm(self) -> None:
        if self.draining:
            say("second signal: exiting now")
            self.stopping = True
            self._stop.set()
            return
        say("draining: finishing held jobs, taking no new ones (signal again to exit now)")
        self.draining = True
        if not self.jobs:
            self._stop.set()

    async def _abandon_all(self) -> None:
        for held in list(self.jobs.values()):
            await self._drop(held, cancel=True)

    def _channel(self) -> grpc.aio.Channel:
        if self.config.tls:
            root = None
            if self.config.ca_file:
                with open(self.config.ca_file, "rb") as f:
                    root = f.read()
            return grpc.aio.secure_channel(self.config.server, grpc.ssl_channel_credentials(root))
        return grpc.aio.insecure_channel(self.config.server)

    async def _session(self) -> None:
        async with self._channel() as channel:
            agent = agent_pb2_grpc.AgentServiceStub(channel)
            streams = stream_pb2_grpc.StreamServiceStub(channel)
            await self._register(agent)
            tasks = [asyncio.create_task(self._heartbeats(agent), name="heartbeat"),
                     asyncio.create_task(self._fetch_loop(streams), name="fetch"),
                     asyncio.create_task(self._flush_loop(agent), name="flush"),
                     asyncio.create_task(self._stop.wait(), name="stop")]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            for t in done:
                if t.get_name() == "stop":
                    with contextlib.suppress(grpc.aio.AioRpcError):
                        await self._flush_all(agent)
                        await agent.Unregister(apb.UnregisterRequest(agent_id=self.agent_id, reason="agent exiting"),
                                               metadata=self._metadata, timeout=3)
                    say("unregistered; bye")
                    return
                exc = t.exception()
                if exc is not None:
                    raise exc

    async def _register(self, agent: agent_pb2_grpc.AgentServiceStub) -> None:
        request = apb.RegisterRequest(protocol_version=PROTOCOL_VERSION, agent_id=self.agent_id,
                                      name=self.config.name or socket.gethostname(), host=host_info(),
                                      labels=self.config.labels, capacity=self.config.capacity)
        try:
            resp = await agent.Register(request, metadata=self._metadata, timeout=10)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED,
                              grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT,
                              grpc.StatusCode.UNIMPLEMENTED):
                raise AgentFatal(f"the server refused registration: {exc.details()}") from None
            raise
        first = not self.agent_id
        self.agent_id = resp.agent_id
        self.secret = resp.session_secret
        self.heartbeat_seconds = resp.heartbeat_interval_seconds or 10.0
        say(f"{'registered' if first else 'registered again'} as {self.agent_id} at {self.config.server} "
            f"(labels {','.join(f'{k}={v}' for k, v in sorted(self.config.labels.items())) or '-'}; "
            f"capacity {self.config.capacity}; heartbeat {self.heartbeat_seconds:g} s)")

    def _leases(self) -> list[apb.JobLease]:
        return [apb.JobLease(job_id=h.job_id, lease_token=h.token) for h in self.jobs.values() if not h.revoked]

    def _active(self) -> int:
        return sum(1 for h in self.jobs.values() if h.tasks)

    # -- loops ------------------------------------------------------------------------------------------
    async def _heartbeats(self, agent: agent_pb2_grpc.AgentServiceStub) -> None:
        import psutil

        psutil.cpu_percent(None)
        while True:
            status = apb.AGENT_STATUS_BUSY if self._active() >= self.config.capacity else apb.AGENT_STATUS_IDLE
            try:
                resp = await agent.Heartbeat(apb.HeartbeatRequest(
                    agent_id=self.agent_id, status=status, running=self._active(), metrics=metrics(self.workdir),
                    timestamp_ms=int(time.time() * 1000), leases=self._leases(), draining=self.draining),
                    metadata=self._metadata, timeout=max(2.0, self.heartbeat_seconds))
            except grpc.aio.AioRpcError as exc:
                if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED):
                    say(f"the server does not know this agent's session ({exc.details()}); registering again")
                    self._forget(keep_id=exc.code() == grpc.StatusCode.PERMISSION_DENIED)
                raise
            for job_id in resp.revoked_job_ids:
                held = self.jobs.get(job_id)
                if held is not None:
                    say(f"lease of job {held.name} ({job_id}) revoked by the server: stopping its steps")
                    held.revoked = True
                    await self._drop(held, cancel=True)
            await asyncio.sleep(self.heartbeat_seconds)

    async def _fetch_loop(self, streams: stream_pb2_grpc.StreamServiceStub) -> None:
        call = streams.AgentChannel(metadata=self._metadata)
        await call.write(stream_pb2.AgentChannelRequest(hello=stream_pb2.AgentHello(
            agent_id=self.agent_id, protocol_version=PROTOCOL_VERSION, leases=self._leases())))
        first = await call.read()
        if first is grpc.aio.EOF:
            raise ConnectionError("the server closed the agent channel")
        while True:
            # the server counts this agent's load itself (a step that ends frees a slot while this
            # fetch waits), so ask for up to the whole capacity; a draining agent asks for none
            free = 0 if self.draining else self.config.capacity
            await call.write(stream_pb2.AgentChannelRequest(fetch=apb.FetchJobRequest(
                agent_id=self.agent_id, max_jobs=free, wait_seconds=self.config.fetch_wait, leases=self._leases())))
            resp = await call.read()
            if resp is grpc.aio.EOF:
                raise ConnectionError("the server closed the agent channel")
            if resp.HasField("assignment"):
                self._assigned(resp.assignment)
            if self.draining and not self.jobs:
                self._stop.set()

    def _assigned(self, got: apb.FetchJobResponse) -> None:
        for job_id in got.done_job_ids:  # first: a job that ended frees its slot before new ones come
            held = self.jobs.get(job_id)
            if held is not None:
                held.ended = True
                say(f"job {held.name} ({job_id}) over: its workspace goes")
                dropping = asyncio.create_task(self._drop(held, cancel=True))  # over: whatever still runs stops
                self._background.add(dropping)
                dropping.add_done_callback(self._background.discard)
        for job in got.jobs:
            graph = ExecutionGraph.model_validate_json(job.graph_json)
            workspace = os.path.join(self.workdir, job.job_id)
            os.makedirs(workspace, exist_ok=True)
            ctx = RunContext(run_id=job.run_id, attempt=job.attempt, workdir=workspace, graph=graph,
                             grace_seconds=self.config.grace_seconds, inherit_env="allowlist")
            self.jobs[job.job_id] = _Held(job.job_id, job.run_id, job.attempt, job.name, job.lease_token, graph,
                                          workspace, ctx)
            say(f"claimed job {job.name} of run {job.run_id} ({job.job_id}, token {job.lease_token})")
        for task in got.tasks:
            held = self.jobs.get(task.job_id)
            if held is None or held.revoked:
                continue
            held.tasks[task.task_id] = asyncio.create_task(self._run_task(held, task), name=task.task_id)
        for task_id in got.cancel_task_ids:
            for held in self.jobs.values():
                running = held.tasks.get(task_id)
                if running is not None:
                    running.cancel("stop requested by the server")

    async def _drop(self, held: _Held, *, cancel: bool) -> None:
        """Forget a job: stop (or wait for) its tasks, close its backends, remove its workspace."""
        if self.jobs.get(held.job_id) is not held:
            return
        tasks = list(held.tasks.values())
        if cancel:
            for t in tasks:
                t.cancel("the job's lease is gone")
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self.jobs.pop(held.job_id, None)
        for backend in held.backends.values():
            with contextlib.suppress(Exception):
                await backend.close()
        shutil.rmtree(held.workspace, ignore_errors=True)
        if self.draining and not self.jobs:
            self._stop.set()

    async def _flush_loop(self, agent: agent_pb2_grpc.AgentServiceStub) -> None:
        self._agent_stub = agent
        while True:
            await self._flush_all(agent)
            await asyncio.sleep(FLUSH_SECONDS)

    async def _flush_all(self, agent: agent_pb2_grpc.AgentServiceStub) -> None:
        for held in list(self.jobs.values()):
            await self._flush(agent, held)

    async def _flush(self, agent: agent_pb2_grpc.AgentServiceStub, held: _Held) -> None:
        """Send every unacknowledged line of the job (a resend after a reconnect is dropped server-side)."""
        async with held.lock:
            if not held.buffer or held.revoked:
                return
            batch = list(held.buffer)
            try:
                resp = await agent.ReportJobLog(apb.ReportJobLogRequest(
                    agent_id=self.agent_id, job_id=held.job_id, lease_token=held.token, logs=batch),
                    metadata=self._metadata, timeout=10)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                    say(f"log lines of job {held.name} refused: {exc.details()}")
                    held.revoked = True
                    held.buffer.clear()
                    return
                raise
            held.acked = max(held.acked, resp.acked_line_number)
            held.buffer = [c for c in held.buffer if c.line_number > held.acked]
            held.buffered_bytes = sum(len(c.content) for c in held.buffer)

    # -- one task -----------------------------------------------------------------------------------------
    def _emit(self, held: _Held, task_id: str, step: str, stream: str, line: str) -> None:
        chunk = apb.LogChunk(timestamp_ms=int(time.time() * 1000), line_number=held.next_line,
                             level=apb.LOG_LEVEL_ERROR if stream == "stderr" else apb.LOG_LEVEL_INFO,
                             content=line, stream=_STREAMS.get(stream, apb.LOG_STREAM_STDOUT), task_id=task_id,
                             step=step)
        held.next_line += 1
        held.buffer.append(chunk)
        held.buffered_bytes += len(line)
        stub = getattr(self, "_agent_stub", None)
        if held.buffered_bytes >= FLUSH_BYTES and stub is not None:
            asyncio.get_running_loop().create_task(self._flush(stub, held))

    def _backend(self, held: _Held, kind: str) -> Backend:
        backend = held.backends.get(kind)
        if backend is None:
            from worldtree.backends.registry import create_backend

            backend = held.backends[kind] = create_backend(kind, held.ctx)
        return backend

    async def _run_task(self, held: _Held, task: apb.Task) -> None:
        exit_code: int | None = None
        error: str | None = None
        stopped = False
        started = time.time()
        try:
            node = held.graph.by_id().get(task.node_json)
            if node is None:
                raise BackendError(f"node {task.node_json!r} is not in the job's graph")
            masker = Masker(list(task.secrets))
            env = {**dict(task.env), **runner_env(held.graph, held.workspace)}
            workdir = os.path.join(held.workspace, task.workdir) if task.workdir else held.workspace
            os.makedirs(workdir, exist_ok=True)
            purpose: Any = task.purpose if task.purpose in ("run", "precheck", "rollback") else "run"

            def sink(stream: str, line: str) -> None:
                self._emit(held, task.task_id, node.id, stream, masker.mask(line))

            await self._restore(held, node.id, sink)
            command = task.commands[0] if task.commands else node.command
            exit_code = await self._backend(held, node.target.kind).execute(
                StepRequest(node, command, env, workdir, purpose=purpose, try_number=task.try_number), sink)
        except asyncio.CancelledError:
            stopped = True
        except BackendError as exc:
            error = str(exc)
        except Exception as exc:  # a broken step must not take the agent with it
            error = f"internal error on the agent: {type(exc).__name__}: {exc}"
        held.tasks.pop(task.task_id, None)
        if held.revoked:
            return
        if not stopped and task.purpose in ("run", ""):
            failed = bool(error) or exit_code != 0
            await self._upload_artifacts(held, task, failed)
        await self._report(held, task, exit_code, error, stopped, started)

    async def _restore(self, held: _Held, step: str, sink: Any) -> None:
        """Before the job's first step: the artifacts of the jobs it needs into its workspace."""
        async with held.restore_lock:
            if held.restored or not artifacts.needs_outside(held.graph):
                held.restored = True
                return
            stub = getattr(self, "_agent_stub", None)
            if stub is None:
                raise BackendError("not connected to the server: cannot fetch the artifacts this job needs")
            try:
                files, size = await artifacts.download(stub, self._metadata, self.agent_id, held.job_id, held.token,
                                                       held.workspace)
            except grpc.aio.AioRpcError as exc:
                raise BackendError(f"could not fetch the artifacts of the jobs {held.name} needs: "
                                   f"{exc.code().name}: {exc.details()}") from None
            held.restored = True
            if files:
                sink("stderr", f"[worldtree] artifacts: fetched {files} file(s), {size} bytes of the jobs it needs")

    async def _upload_artifacts(self, held: _Held, task: apb.Task, failed: bool) -> None:
        """After the job's last step (or a failed one, per ``when``), before its report: upload the job's
        ``artifacts:``. The report, and so the dispatch of the jobs that need them, waits for this."""
        rule = artifacts.rule_for(held.graph, task.node_json, failed)
        if rule is None:
            return
        try:
            names = await asyncio.to_thread(artifacts.collect, held.workspace, rule)
        except WorldtreeError as exc:
            self._emit(held, task.task_id, task.node_json, "stderr", f"[worldtree] artifacts: {exc}")
            return
        delay = 0.2
        while not held.revoked:
            stub = getattr(self, "_agent_stub", None)
            try:
                if stub is None:
                    raise ConnectionError("not connected")
                size = await artifacts.upload(stub, self._metadata, self.agent_id, held.job_id, held.token,
                                              held.workspace, names)
                self._emit(held, task.task_id, task.node_json, "stderr",
                           f"[worldtree] artifacts: uploaded {len(names)} file(s), {size} bytes")
                return
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                    say(f"artifacts of job {held.name} refused: {exc.details()}")
                    held.revoked = True
                    return
                if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    self._emit(held, task.task_id, task.node_json, "stderr",
                               f"[worldtree] artifacts: not uploaded: {exc.code().name}: {exc.details()}")
                    return
            except OSError as exc:  # a file went away between matching and reading
                self._emit(held, task.task_id, task.node_json, "stderr", f"[worldtree] artifacts: {exc}")
                return
            except Exception:  # not connected now: retry with the next session, as reports do
                pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _report(self, held: _Held, task: apb.Task, exit_code: int | None, error: str | None,
                      stopped: bool, started: float) -> None:
        status = (apb.JOB_STATUS_CANCELLED if stopped else apb.JOB_STATUS_FAILED if error or exit_code
                  else apb.JOB_STATUS_SUCCESS)
        request = apb.ReportJobStatusRequest(
            agent_id=self.agent_id, job_id=held.job_id, lease_token=held.token, task_id=task.task_id, status=status,
            exit_code=-1 if exit_code is None else exit_code, error_message=error or "",
            started_at_ms=int(started * 1000), finished_at_ms=int(time.time() * 1000))
        delay = 0.2
        while not held.revoked:
            stub = getattr(self, "_agent_stub", None)
            try:
                if stub is None:
                    raise ConnectionError("not connected")
                await self._flush(stub, held)  # the lines first: the server ends the step on this report
                request.agent_id = self.agent_id
                await stub.ReportJobStatus(request, metadata=self._metadata, timeout=10)
                return
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                    say(f"report of step {task.node_json} (job {held.name}) refused: {exc.details()}")
                    held.revoked = True
                    return
            except Exception:  # not connected now (a closed channel, a restart): retry with the next session
                pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


def run_agent(config: AgentConfig) -> int:
    """Run until drained or stopped; the exit code (2: refused by the server)."""
    return asyncio.run(Agent(config).run())
