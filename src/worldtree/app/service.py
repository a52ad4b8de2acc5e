"""The server's operations on runs, one function each: submit, list, get, cancel, retry, logs.

REST handlers (and later WebSocket, gRPC and MCP) only translate protocols to these calls and
their results back; nothing here knows about HTTP. Every result is plain data (dicts ready for
JSON) so each interface renders the same thing.

Submitting is asynchronous and durable: the document is checked and compiled, the run is stored
``pending`` at attempt 0 with the option ``queued`` set, and the id is returned at once. The
executors (:mod:`worldtree.app.executor`) claim it from the store; nothing lives only in memory.
"""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from worldtree.app import concurrency, events
from worldtree.app.runs import _load_graph, _stored_graph
from worldtree.app.secrets import literal_credentials
from worldtree.engine.masking import Masker
from worldtree.errors import ConflictError, UsageError
from worldtree.model.records import LogLine, RunRecord
from worldtree.model.states import RunState
from worldtree.store.api import RunStore
from worldtree.store.lifecycle import QUEUED_OPTION

#: Largest page a list call returns (a client asking for more gets this many).
MAX_PAGE_SIZE = 200
#: Largest number of log lines one ``logs`` call returns.
MAX_LOG_LIMIT = 10_000
#: Run states a run can be queried by (``interrupted`` is computed, see the store).
RUN_STATES = tuple(str(s) for s in RunState)
#: Run states in which a run will not change again unless retried.
FINISHED = frozenset(str(s) for s in (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED,
                                      RunState.TIMED_OUT, RunState.ERROR))


class NotFoundError(UsageError):
    """The run (or what was asked of it) does not exist."""


class StateConflictError(UsageError):
    """The run is not in a state that allows the operation (cancel a finished run, retry a running one)."""


@dataclass(frozen=True)
class ServiceConfig:
    """Where the server keeps run workspaces (``<data_dir>/workspaces/<token>``)."""

    data_dir: str


def submit(store: RunStore, config: ServiceConfig, document: str, *, env: dict[str, str] | None = None,
           filename: str = "<request>", workdir: str | None = None) -> dict[str, Any]:
    """Check, compile and queue ``document``; ``{"id", "state": "queued"}``. SpecError (located) on a bad one.

    ``workdir``: a workspace the caller prepared under ``<data_dir>/workspaces`` (GitOps: the commit's
    checkout, holding the :data:`~worldtree.app.workdir.MARKER` so it is removed after a success)."""
    from worldtree.app import op_checks  # noqa: F401  (checks `op:` steps while loading, lazily)
    from worldtree.compile.compiler import compile_pipeline
    from worldtree.compile.loader import load_pipeline_text

    env = dict(env or {})
    loaded = load_pipeline_text(document, filename)
    graph = compile_pipeline(loaded.spec, source=None, env_overrides=env)
    if any(n.target.hosts for n in graph.nodes):
        raise UsageError("jobs with `hosts:` need an inventory, which the server does not take yet; "
                         "run this pipeline with `worldtree run`")
    workspace = Path(workdir) if workdir else Path(config.data_dir).resolve() / "workspaces" / secrets.token_hex(8)
    literal = literal_credentials(graph)
    options = {QUEUED_OPTION: True, "env": env, "concurrency": None, "allow_env": [], "allow_all_env": False,
               "workdir_created": True, **concurrency.options(loaded.spec, env),
               "document": Masker(literal).mask(document) if literal else document}
    run_id = store.create_run(name=graph.name, source=None, workdir=str(workspace), graph_json=_stored_graph(graph),
                              options=options, graph_version=graph.schema_version)
    events.emit(store, events.RUN_QUEUED, run_id, pipeline=graph.name, attempt=0)
    concurrency.supersede(store, run_id, options)  # cancel_in_progress: the group's older runs stop
    store.notify_queue()  # executors of every replica look now rather than at their next poll
    return {"id": run_id, "state": "queued"}


def list_runs(store: RunStore, *, page: int = 1, page_size: int = 50, state: str | None = None,
              pipeline: str | None = None, since: datetime | None = None,
              until: datetime | None = None, q: str | None = None) -> dict[str, Any]:
    """Newest first: ``{"items", "total", "page", "page_size"}``; ``q`` searches ids and names."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise UsageError(f"{name} needs a time zone (e.g. 2026-11-30T10:00:00Z)")
    if page < 1:
        raise UsageError(f"page must be 1 or more, not {page}")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise UsageError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, not {page_size}")
    if state is not None and state not in RUN_STATES:
        raise UsageError(f"unknown state {state!r}; one of {', '.join(RUN_STATES)}")
    records, total = store.page_runs(offset=(page - 1) * page_size, limit=page_size, state=state,
                                     pipeline=pipeline, since=since, until=until, q=q or None)
    return {"items": [_summary(r) for r in records], "total": total, "page": page, "page_size": page_size}


def get_run(store: RunStore, run_id: str) -> dict[str, Any]:
    """The run with its latest attempt's nodes (in start order, then the ones not started)."""
    record = _record(store, run_id)
    graph = _load_graph(record.graph_json)
    paths = {n.id: n.path for n in graph.nodes}
    view = _summary(record)
    view["nodes"] = [{"id": n.node, "path": paths.get(n.node, n.node), "state": n.state, "exit_code": n.exit_code,
                      "error": n.error, "reason": n.reason, "try": n.try_number, "started_at": _iso(n.started_at),
                      "finished_at": _iso(n.finished_at)} for n in record.nodes]
    return view


def graph(store: RunStore, run_id: str) -> dict[str, Any]:
    """The run's DAG for a console: nodes (with their latest state) and ``needs`` edges, in graph order."""
    record = _record(store, run_id)
    compiled = _load_graph(record.graph_json)
    states = {n.node: n.state for n in record.nodes}
    nodes = [{"id": n.id, "path": n.path, "name": n.name, "kind": n.kind, "stage": n.stage, "job": n.job,
              "state": states.get(n.id, "pending")} for n in compiled.nodes]
    edges = [{"from": need, "to": n.id} for n in compiled.nodes for need in n.needs]
    return {"id": record.run_id, "state": _state(record.state), "nodes": nodes, "edges": edges}


def document(store: RunStore, run_id: str) -> str:
    """The pipeline document the run was submitted with (literal credentials masked)."""
    record = _record(store, run_id)
    text = record.options.get("document")
    if not isinstance(text, str):
        raise NotFoundError(f"run {record.run_id} was not submitted to a server: it has no stored document")
    return text


def cancel(store: RunStore, run_id: str, reason: str = "cancelled through the API") -> dict[str, Any]:
    """Persist a cancel request; whoever runs the run (any replica) gets it through its lease heartbeat."""
    record = _record(store, run_id)
    if not store.request_cancel(record.run_id, reason):
        raise StateConflictError(f"run {record.run_id} is {record.state}; only a queued or running run "
                                 "can be cancelled")
    return {"id": record.run_id, "state": _state(record.state), "cancel_requested": True}


def retry(store: RunStore, run_id: str) -> dict[str, Any]:
    """Queue a new attempt of a finished run that did not succeed (same id; succeeded nodes are reused)."""
    record = _record(store, run_id)
    if not record.options.get(QUEUED_OPTION):
        raise StateConflictError(f"run {record.run_id} was started by `worldtree run`; retry it with "
                                 f"`worldtree retry {record.run_id}`")
    if record.state not in FINISHED or record.state == RunState.SUCCEEDED:
        raise StateConflictError(f"run {record.run_id} is {record.state}; only a failed, cancelled, timed out "
                                 "or errored run can be retried")
    if not store.requeue_run(record.run_id, record.attempt):
        raise ConflictError(f"run {record.run_id} changed while it was being retried; see GET /runs/{record.run_id}")
    events.emit(store, events.RUN_QUEUED, record.run_id, pipeline=record.name, attempt=record.attempt)
    store.notify_queue()
    return {"id": record.run_id, "state": "queued", "attempt": record.attempt}


def delete(store: RunStore, config: ServiceConfig, run_id: str) -> None:
    """Forget a finished run: its records, its lines, and the workspace a failed run kept."""
    record = _record(store, run_id)
    if record.state not in FINISHED:
        raise StateConflictError(f"run {record.run_id} is {record.state}; cancel it (or let it finish) first")
    if not store.delete_run(record.run_id):
        raise ConflictError(f"run {record.run_id} changed while it was being deleted; see GET /runs/{record.run_id}")
    events.forget_run(store, record.run_id)
    workspaces = Path(config.data_dir).resolve() / "workspaces"
    kept = Path(record.workdir)
    if record.options.get(QUEUED_OPTION) and kept.parent == workspaces and kept.is_dir():
        shutil.rmtree(kept, ignore_errors=True)  # only a workspace this server made, never a user's directory


def logs(store: RunStore, run_id: str, *, node: str | None = None, offset: int = 0,
         limit: int = 1000) -> tuple[str, list[LogLine]]:
    """Lines after log sequence number ``offset`` (0: from the start), at most ``limit``; and the full run id."""
    if offset < 0:
        raise UsageError(f"offset must be 0 or more, not {offset}")
    if not 1 <= limit <= MAX_LOG_LIMIT:
        raise UsageError(f"limit must be between 1 and {MAX_LOG_LIMIT}, not {limit}")
    record = _record(store, run_id)
    return record.run_id, store.logs(record.run_id, node=node, after_seq=offset, limit=limit)


def resolve(store: RunStore, run_id: str) -> str:
    """The full id of ``run_id`` (a unique prefix will do); NotFoundError when there is none."""
    return _record(store, run_id).run_id


def lines_after(store: RunStore, full_id: str, *, node: str | None, after: int, limit: int) -> list[LogLine]:
    """A follower's next lines (``full_id`` already resolved: a follower polls, so no run read per poll)."""
    return store.logs(full_id, node=node, after_seq=after, limit=limit)


def run_state(store: RunStore, run_id: str) -> str:
    """The run's state as clients see it (``queued`` for a pending run)."""
    return _state(_record(store, run_id).state)


def line_json(line: LogLine) -> dict[str, Any]:
    return {"seq": line.seq, "node": line.node, "stream": line.stream, "line": line.line, "ts": _iso(line.ts),
            "attempt": line.attempt}


def is_final(state: str) -> bool:
    """Whether a client state will not change any more on its own (an interrupted run is taken over)."""
    return state in FINISHED


def _record(store: RunStore, run_id: str) -> RunRecord:
    record = store.get_run(run_id)
    if record is None:
        raise NotFoundError(f"no run {run_id!r}; GET /api/v1/runs lists them")
    return record


def _state(state: str) -> str:
    return "queued" if state == RunState.PENDING else state


def _summary(record: RunRecord) -> dict[str, Any]:
    return {"id": record.run_id, "state": _state(record.state), "attempt": record.attempt, "pipeline": record.name,
            "created_at": _iso(record.created_at), "started_at": _iso(record.started_at),
            "finished_at": _iso(record.finished_at), "cancel_reason": record.cancel_reason}


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None

