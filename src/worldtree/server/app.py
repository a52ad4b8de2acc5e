"""The FastAPI application: REST under ``/api/v1``, health probes, and the executors' lifetime.

Handlers translate HTTP to :mod:`worldtree.app.service` and back; they hold no logic. The
application owns one store and ``executors`` :class:`~worldtree.app.executor.Executor` threads,
started with the app and told to stop with it (after a drain). A submit wakes the local executors
at once, those of other replicas through PostgreSQL NOTIFY, and every executor also polls the store.
Middleware (pure ASGI, so SSE streams pass through): request timing for ``/metrics``, then the
audit log of mutating calls.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from worldtree import __version__
from worldtree.app import service, tokens
from worldtree.app.executor import Executor
from worldtree.compile.yaml_source import MAX_DOCUMENT_BYTES
from worldtree.errors import UsageError
from worldtree.server import errors, server_data
from worldtree.server.audit import Audited
from worldtree.server.auth import require
from worldtree.server.metrics import Metrics
from worldtree.server.nul_guard import NulGuard
from worldtree.server.routes_console import router as console_router
from worldtree.server.routes_events import router as events_router
from worldtree.server.routes_explain import router as explain_router
from worldtree.server.routes_queue import router as queue_router
from worldtree.server.streams import log_events
from worldtree.server.ws import router as ws_router
from worldtree.store.api import LEASE_SECONDS, RunStore

log = logging.getLogger("worldtree.server")


@dataclass
class ServerSettings:
    store_url: str
    data_dir: str
    executors: int = 2
    lease_seconds: float = LEASE_SECONDS
    #: how often idle executors look at the queue (PostgreSQL also wakes them by NOTIFY)
    poll_seconds: float = 0.5
    #: on shutdown (SIGTERM), how long runs under way may take to end before the process exits
    drain_seconds: float = 25.0
    #: check tokens and roles (off only on a loopback address: the CLI enforces it)
    auth: bool = True
    #: GitOps: NATS JetStream for webhook deliveries (nats://host:port); None: the store is the queue
    events_url: str | None = None
    #: GitOps: the server's address as users reach it (commit statuses link to its console)
    public_url: str | None = None
    #: queued runs running at once across every replica (None: only --executors bounds this replica)
    max_concurrent: int | None = None
    #: gRPC (agents, JobService) beside the REST API: port (0 picks a free one; None: no gRPC), host, TLS
    grpc_port: int | None = None
    grpc_host: str = "127.0.0.1"
    grpc_tls_cert: str | None = None
    grpc_tls_key: str | None = None
    #: the default port: when it is taken, run without gRPC (and say so) instead of failing
    grpc_optional: bool = False


@dataclass
class _Runtime:
    store: RunStore
    config: service.ServiceConfig
    auth: bool
    wake: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)


class SubmitBody(BaseModel):
    document: str = Field(description="the pipeline document (YAML)")
    env: dict[str, str] = Field(default_factory=dict, description="variables that override the document's `env`")


def create_app(settings: ServerSettings) -> FastAPI:
    """The application; the store opens (and migrates) and the executors start with its lifespan."""

    opened: list[RunStore] = []
    metrics = Metrics(lambda: opened[0] if opened else None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from worldtree.store import open_store

        store = open_store(settings.store_url)
        opened.append(store)
        runtime = _Runtime(store, service.ServiceConfig(settings.data_dir), settings.auth)
        secret_values = server_data.start(store, settings.data_dir)  # key check, artifact purges; secret values
        for number in range(settings.executors):
            executor = Executor(store, name=f"executor-{number + 1}", lease_seconds=settings.lease_seconds,
                                wake=runtime.wake, on_result=metrics.run_finished, poll_seconds=settings.poll_seconds,
                                secret_values=secret_values, max_concurrent=settings.max_concurrent)
            thread = threading.Thread(target=executor.serve, args=(runtime.stop,), name=executor.name, daemon=True)
            thread.start()
            runtime.threads.append(thread)
        if settings.executors:  # PostgreSQL: a submit on any replica wakes these executors at once
            store.listen_queue(runtime.wake.set, runtime.stop)
        app.state.runtime = runtime
        from worldtree.app import agents as agent_app
        from worldtree.server import grpc_server  # agents and JobService over gRPC (--grpc-port)

        agent_app.use_secret_store(secret_values)  # a task another replica queued: its secrets from the store
        grpc_handle = grpc_server.start_for_app(store, settings)
        from worldtree.gitops import runtime as gitops_runtime  # webhook consumer, commit statuses, schedules

        app.state.gitops = gitops_runtime.start(store, settings.data_dir, runtime.stop, runtime.wake, runtime.threads,
                                                events_url=settings.events_url, public_url=settings.public_url)
        try:
            yield
        finally:
            # Stop claiming; let the runs under way end for up to ``drain_seconds``. What is still
            # running then is left to its lease: a restart (or another replica) takes it over.
            runtime.stop.set()
            runtime.wake.set()
            grpc_server.stop(grpc_handle)
            from anyio import to_thread

            await to_thread.run_sync(_join, runtime.threads, settings.drain_seconds)

    app = FastAPI(title="worldtree", version=__version__, lifespan=lifespan,
                  description="Submit pipelines, follow their logs live, cancel and retry them.")
    errors.install(app)
    app.add_middleware(Audited, store=lambda: opened[0] if opened else None)
    app.add_middleware(_Timed, metrics=metrics)
    app.add_middleware(NulGuard)  # a NUL in a path or query: 404/422 before the store (PostgreSQL: was 503)
    _routes(app, settings)
    _token_routes(app)
    from worldtree.server import routes_repos, routes_webhooks

    app.include_router(routes_webhooks.router)  # POST /api/v1/webhooks/{provider}, GET /api/v1/deliveries
    app.include_router(routes_repos.router)  # /api/v1/repos, /api/v1/schedules
    app.include_router(explain_router)  # GET /api/v1/jobs/{id}/explain (before other /jobs/{id...} routes)
    server_data.include(app)  # secrets, stored pipelines, jobs, artifacts
    app.include_router(console_router)  # the web console and GET /api/v1/whoami
    app.include_router(queue_router)  # GET /api/v1/queue, /queue/stats
    from worldtree.server import routes_agents

    app.include_router(routes_agents.router)  # /api/v1/agents
    app.include_router(events_router)  # SSE /api/v1/events, /runs/{id}/events
    app.include_router(ws_router)  # seed 003's WebSocket protocol at /, /api/v1/ws/... twins
    app.state.settings = settings

    @app.get("/metrics", tags=["health"], response_class=Response)
    def prometheus() -> Response:
        """Prometheus metrics (seed 001's series)."""
        return metrics.render()

    return app


class _Timed:
    """ASGI middleware: every request timed into ``http_request_duration_seconds``."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.timed = metrics.asgi(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.timed(scope, receive, send)


def _join(threads: list[threading.Thread], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    if any(thread.is_alive() for thread in threads):
        log.warning("runs still under way after %g s of shutdown are left to their leases", seconds)


def _runtime(request: Request) -> _Runtime:
    runtime: _Runtime = request.app.state.runtime
    return runtime


#: Bounds of numeric parameters: the databases' 64-bit integers (a larger one is a 422, not a 500).
MAX_SEQ = 2**62
MAX_PAGE = 2**31
_STATE_ENUM: dict[str, Any] = {"enum": [*service.RUN_STATES, "queued"]}


def _routes(app: FastAPI, settings: ServerSettings) -> None:
    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz(request: Request) -> dict[str, str]:
        """The store answers (it was migrated to head when the server started)."""
        _runtime(request).store.page_runs(limit=1)
        return {"status": "ready"}

    submit_role = require("maintainer")
    submit_role["openapi_extra"]["requestBody"] = {"content": {
        "application/yaml": {"schema": {"type": "string"}},
        "application/json": {"schema": SubmitBody.model_json_schema()}}, "required": True}

    @app.post("/api/v1/runs", status_code=202, tags=["runs"], **submit_role)
    async def submit(request: Request) -> JSONResponse:
        """Queue a pipeline: the document as ``application/yaml``, or JSON ``{"document", "env"}``."""
        raw = await _body(request)
        document, env = _submission(raw, request.headers.get("content-type", ""))
        runtime = _runtime(request)
        from anyio import to_thread

        created = await to_thread.run_sync(lambda: service.submit(runtime.store, runtime.config, document, env=env))
        runtime.wake.set()
        return JSONResponse(created, status_code=202, headers={"Location": f"/api/v1/runs/{created['id']}"})

    @app.get("/api/v1/runs", tags=["runs"], **require("viewer"))
    def list_runs(request: Request, page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
                  page_size: Annotated[int, Query(ge=1, le=service.MAX_PAGE_SIZE)] = 50,
                  state: Annotated[str | None, Query(json_schema_extra=_STATE_ENUM)] = None,
                  pipeline: str | None = None, since: datetime | None = None, until: datetime | None = None,
                  q: Annotated[str | None, Query(max_length=200, description="substring of the id or name")] = None,
                  ) -> dict[str, Any]:
        """Runs, newest first: ``{items, total, page, page_size}``; ``since``/``until`` bound the creation
        time; ``q`` searches ids and names (case-insensitive)."""
        if state == "queued":
            state = "pending"
        return service.list_runs(_runtime(request).store, page=page, page_size=page_size, state=state,
                                 pipeline=pipeline, since=since, until=until, q=q)

    @app.get("/api/v1/runs/{run_id}", tags=["runs"], **require("viewer"))
    def get_run(request: Request, run_id: str) -> dict[str, Any]:
        """The run and its nodes (the latest attempt)."""
        return service.get_run(_runtime(request).store, run_id)

    @app.get("/api/v1/runs/{run_id}/graph", tags=["runs"], **require("viewer"))
    def get_graph(request: Request, run_id: str) -> dict[str, Any]:
        """Nodes and ``needs`` edges, each node with its state (for drawing the DAG)."""
        return service.graph(_runtime(request).store, run_id)

    @app.get("/api/v1/tasks/{run_id}", tags=["runs"], **require("viewer"))
    def get_task(request: Request, run_id: str) -> dict[str, Any]:
        """Seed 001's name for a run: the same as ``GET /runs/{id}``."""
        return service.get_run(_runtime(request).store, run_id)

    @app.get("/api/v1/runs/{run_id}/document", tags=["runs"], response_class=PlainTextResponse,
             **require("viewer"))
    def get_document(request: Request, run_id: str) -> str:
        """The document the run was submitted with."""
        return service.document(_runtime(request).store, run_id)

    @app.delete("/api/v1/runs/{run_id}", status_code=204, tags=["runs"], **require("maintainer"))
    def delete_run(request: Request, run_id: str) -> Response:
        """Delete a finished run, its logs and the workspace a failed run kept."""
        runtime = _runtime(request)
        service.delete(runtime.store, runtime.config, run_id)
        return Response(status_code=204)

    @app.post("/api/v1/runs/{run_id}/cancel", status_code=202, tags=["runs"], **require("maintainer"))
    def cancel(request: Request, run_id: str) -> dict[str, Any]:
        """Ask whoever runs it to cancel it (persisted; delivered by the lease heartbeat)."""
        return service.cancel(_runtime(request).store, run_id)

    @app.post("/api/v1/runs/{run_id}/retry", status_code=202, tags=["runs"], **require("maintainer"))
    def retry(request: Request, run_id: str) -> dict[str, Any]:
        """Queue a new attempt of a run that did not succeed; succeeded nodes are reused."""
        runtime = _runtime(request)
        queued = service.retry(runtime.store, run_id)
        runtime.wake.set()
        return queued

    @app.get("/api/v1/runs/{run_id}/logs", tags=["logs"], response_model=None, **require("viewer"))
    def logs(request: Request, run_id: str, node: str | None = None,
             offset: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
             limit: Annotated[int, Query(ge=1, le=service.MAX_LOG_LIMIT)] = 1000,
             format: Annotated[str, Query(pattern="^(json|text)$")] = "json") -> Response | dict[str, Any]:
        """Lines after seq ``offset``: JSON ``{items, next_offset}``, or ``format=text`` for export."""
        full, lines = service.logs(_runtime(request).store, run_id, node=node, offset=offset, limit=limit)
        if format == "text":  # X-Next-Offset: where the next page starts (an export reads page by page)
            return PlainTextResponse("".join(f"{line.line}\n" for line in lines),
                                     headers={"X-Next-Offset": str(lines[-1].seq if lines else offset)})
        return {"run_id": full, "items": [service.line_json(line) for line in lines],
                "next_offset": lines[-1].seq if lines else offset}

    @app.get("/api/v1/runs/{run_id}/logs/stream", tags=["logs"], response_class=EventSourceResponse,
             **require("viewer"))
    def stream(request: Request, run_id: str, node: str | None = None,
               last_event_id: Annotated[str | None, Header()] = None) -> EventSourceResponse:
        """Server-Sent Events: ``id:`` the line's seq, ``data:`` {node, stream, line, ts}; ends with
        ``event: end``. ``Last-Event-ID`` resumes after that line."""
        store = _runtime(request).store
        full = service.resolve(store, run_id)  # 404 before the stream starts
        after = _last_event_id(last_event_id)
        return EventSourceResponse(log_events(store, full, node=node, after=after), ping=15)


class TokenBody(BaseModel):
    role: str = Field(description="viewer, maintainer or admin")
    name: str | None = None
    expires: str | None = Field(default=None, description="a duration: 30d, 12h, ...")


def _token_routes(app: FastAPI) -> None:
    @app.post("/api/v1/tokens", status_code=201, tags=["tokens"], **require("admin"))
    def create_token(request: Request, body: TokenBody) -> dict[str, Any]:
        """A new token; the response is the only time the token itself is shown."""
        described, token = tokens.create(_runtime(request).store, body.role, name=body.name, expires=body.expires)
        return {**described, "token": token}

    @app.get("/api/v1/tokens", tags=["tokens"], **require("admin"))
    def list_tokens(request: Request) -> dict[str, Any]:
        """Every token (never the token itself)."""
        return {"items": tokens.list_tokens(_runtime(request).store)}

    @app.get("/api/v1/audit", tags=["tokens"], **require("admin"))
    def audit(request: Request, page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
              page_size: Annotated[int, Query(ge=1, le=service.MAX_PAGE_SIZE)] = 100) -> dict[str, Any]:
        """Mutating calls, newest first: who, what, on what, the status, from where."""
        return tokens.audit_page(_runtime(request).store, page=page, page_size=page_size)

    @app.delete("/api/v1/tokens/{token_id}", status_code=204, tags=["tokens"], **require("admin"))
    def revoke_token(request: Request, token_id: str) -> Response:
        """Revoke a token at once (every replica checks the store on each call)."""
        tokens.revoke(_runtime(request).store, token_id)
        return Response(status_code=204)


def _last_event_id(value: str | None) -> int:
    if not value:
        return 0
    try:
        number = int(value.strip())
    except ValueError:
        raise UsageError(f"Last-Event-ID must be a log sequence number, not {value!r}") from None
    if not 0 <= number <= MAX_SEQ:
        raise UsageError(f"Last-Event-ID must be a log sequence number between 0 and {MAX_SEQ}")
    return number


async def _body(request: Request) -> bytes:
    """The request body, refused past the document size limit before it is all read."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_DOCUMENT_BYTES:
            raise UsageError(f"the document is over {MAX_DOCUMENT_BYTES} bytes; split the pipeline")
        chunks.append(chunk)
    return b"".join(chunks)


def _submission(raw: bytes, content_type: str) -> tuple[str, dict[str, str]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError("the body is not UTF-8 text") from None
    if content_type.split(";")[0].strip().lower() != "application/json":
        return text, {}
    try:
        parsed = SubmitBody.model_validate(json.loads(text))
    except (ValueError, TypeError, RecursionError) as exc:  # RecursionError: '[' * 100000 (was a 500)
        raise UsageError(f"the JSON body must be {{\"document\": YAML text, \"env\": {{NAME: value}}}}: "
                         f"{str(exc).splitlines()[0]}") from None
    return parsed.document, parsed.env
