"""Jobs (seed 004's Job service) over runs: one module for both doors, REST ``/api/v1/jobs``
(``server/routes_jobs.py``) and gRPC JobService (``server/grpc_jobs.py``).

A job is the step nodes of one job of a run (the unit an agent takes). Its id is
``RUN_ID:KEY`` where KEY is the job's stage and job slugs joined by ``.`` (``build.compile``; a
``jobs:`` map job is just ``compile``), so it fits one URL path segment. On input the KEY may
also be the job's name or ``stage/job``, and ``/`` may separate the run id (``RUN_ID/build/compile``).

* ``create`` turns CreateJob's fields into a one-job pipeline document (its ``commands`` run in
  order in one shell, one step) and submits it: the same loader checks it, so a bad label selector
  is refused with the same words as in a file, and it runs like any run;
* a job's ``state`` uses worldtree's names (``queued``: its run waits for an executor; ``pending``:
  the run runs, the job waits for its needs or an agent; ``running``, ``succeeded``, ``failed``,
  ``cancelled``, ``timed_out``, ``skipped``); JobService maps them onto JobStatus;
* cancel and retry act on the job's run (the engine claims, cancels and retries runs), and say so.

(History: helper B's first file of this name replaced helper C1's by mistake, 2026-11-30 02:07
UTC; this one joins C1's interface, which ``routes_jobs.py`` calls, with what JobService needs.)
"""

from __future__ import annotations

import json
from typing import Any

from worldtree.app import service
from worldtree.app.runs import _load_graph
from worldtree.app.service import NotFoundError, ServiceConfig
from worldtree.errors import SpecError, UsageError
from worldtree.model.graph import ExecutionGraph, Node, slug
from worldtree.model.records import LogLine, RunRecord
from worldtree.model.states import NodeState
from worldtree.store.agent_snapshots import Placement
from worldtree.store.api import RunStore

__all__ = ["JOB_STATES", "SORT_KEYS", "cancel", "count_lines", "create", "get", "job_artifacts", "job_key", "job_nodes",
           "job_state", "list_jobs", "logs", "parse_job_id", "resolve", "retry"]

JOB_STATES = ("queued", "pending", "running", "succeeded", "failed", "cancelled", "timed_out", "skipped")
#: ``list_jobs`` without a run looks through this many of the newest runs
LIST_SCAN_RUNS = 200
SORT_KEYS = ("created_at", "name", "state")


def parse_job_id(job_id: str) -> tuple[str, str]:
    """``RUN_ID:KEY`` or ``RUN_ID/KEY`` -> (run id, key); run ids hold neither ``:`` nor ``/``."""
    cut = min((i for i in (job_id.find(":"), job_id.find("/")) if i > 0), default=-1)
    if cut < 0 or cut == len(job_id) - 1:
        raise UsageError(f"job id {job_id!r}: write RUN_ID:JOB (e.g. 20261130-101500-abcde:build.compile)")
    return job_id[:cut], job_id[cut + 1:]


def job_key(node: Node) -> str:
    """The KEY of a node's job: its id without the step, ``/`` as ``.`` (``build.compile``)."""
    return node.id.rsplit("/", 1)[0].replace("/", ".")


def job_nodes(graph: ExecutionGraph, job: str) -> list[Node]:
    """The step nodes of the job called ``job``: its KEY, name, ``stage/job`` or slugged form."""
    wanted = {job, job.replace("/", ".")}
    out = []
    for n in graph.nodes:
        if n.kind != "step":
            continue
        names = {n.job, job_key(n), slug(n.job)}
        if n.stage is not None:
            names.add(f"{n.stage}/{n.job}")
        if names & wanted:
            out.append(n)
    return out


def resolve(store: RunStore, job_id: str) -> tuple[RunRecord, ExecutionGraph, list[Node]]:
    """The run, its graph and the job's nodes; NotFoundError listing the run's jobs when there is none."""
    run_id, job = parse_job_id(job_id)
    record = service._record(store, run_id)
    graph = _load_graph(record.graph_json)
    nodes = job_nodes(graph, job)
    if not nodes:
        keys = sorted(dict.fromkeys(job_key(n) for n in graph.nodes if n.kind == "step"))
        raise NotFoundError(f"run {record.run_id} has no job {job!r}; its jobs: {', '.join(keys) or 'none'}")
    return record, graph, nodes


def create(store: RunStore, config: ServiceConfig, fields: dict[str, Any]) -> dict[str, Any]:
    """Queue a one-job run from CreateJob fields: ``{id, run_id, state}``. SpecError (the loader's
    words, about the generated document's keys) on a bad field.

    Fields: ``name``, ``commands`` (required); ``stage``, ``env``, ``timeout`` (seconds), ``image``,
    ``secrets``, ``artifacts`` ({paths, expire_in, when}), ``allow_failure``, ``retry_count``,
    ``label_selector``, ``workspace`` (the job's workdir).
    """
    name = str(fields.get("name") or "").strip()
    commands = [str(c) for c in fields.get("commands") or []]
    if not name:
        raise UsageError("name is required: the job's name")
    if not commands:
        raise UsageError("commands is empty: give at least one command")
    job: dict[str, Any] = {"steps": [{"name": "run", "command": "\n".join(commands)}],
                           "environment": dict(fields.get("env") or {}),
                           "allow_failure": bool(fields.get("allow_failure", False))}
    optional = {"timeout": fields.get("timeout") or None, "image": fields.get("image") or None,
                "secrets": list(fields.get("secrets") or []) or None, "workdir": fields.get("workspace") or None,
                "retry": fields.get("retry_count") or None, "label_selector": fields.get("label_selector") or None,
                "artifacts": fields.get("artifacts") or None}
    job.update({k: v for k, v in optional.items() if v is not None})
    stage = str(fields.get("stage") or "").strip()
    document: dict[str, Any] = {"name": name}
    if stage:
        document["stages"] = [{"name": stage, "jobs": [{"name": name, **job}]}]
    else:
        document["jobs"] = {name: job}
    try:  # JSON is YAML: the document goes through the one loader every submit uses
        created = service.submit(store, config, json.dumps(document, indent=1), filename="CreateJob")
    except SpecError as exc:
        raise SpecError([d for d in exc.diagnostics if d.severity == "error"] or exc.diagnostics) from None
    key = f"{slug(stage)}.{slug(name)}" if stage else slug(name)
    return {"id": f"{created['id']}:{key}", "run_id": created["id"], "state": created["state"]}


def get(store: RunStore, job_id: str) -> dict[str, Any]:
    """The job: state, who ran it, times, its nodes, and what it runs (commands, env, selector)."""
    record, graph, nodes = resolve(store, job_id)
    return _view(store, record, graph, nodes)


def list_jobs(store: RunStore, *, run: str | None = None, state: str | None = None, executor: str | None = None,
              page: int = 1, page_size: int = 50, sort_by: str = "", sort_desc: bool = True) -> dict[str, Any]:
    """Jobs of one run, else of the newest :data:`LIST_SCAN_RUNS` runs, by ``state`` and ``executor``
    (a substring); newest first unless sorted otherwise: ``{items, total, page, page_size}``."""
    if page < 1 or not 1 <= page_size <= service.MAX_PAGE_SIZE:
        raise UsageError(f"page must be 1 or more and page_size between 1 and {service.MAX_PAGE_SIZE}")
    if state is not None and state not in JOB_STATES:
        raise UsageError(f"unknown state {state!r}; one of {', '.join(JOB_STATES)}")
    key = sort_by or "created_at"
    if key not in SORT_KEYS:
        raise UsageError(f"sort_by {sort_by!r}: one of {', '.join(SORT_KEYS)}")
    run_ids = [service.resolve(store, run)] if run else [
        r["id"] for r in service.list_runs(store, page=1, page_size=service.MAX_PAGE_SIZE)["items"]][:LIST_SCAN_RUNS]
    views: list[dict[str, Any]] = []
    for run_id in run_ids:
        record = store.get_run(run_id)
        if record is None:
            continue
        graph = _load_graph(record.graph_json)
        groups: dict[str, list[Node]] = {}
        for n in graph.nodes:
            if n.kind == "step":
                groups.setdefault(job_key(n), []).append(n)
        where = placement(store, record)
        views.extend(_view(store, record, graph, nodes, where) for nodes in groups.values())
    views = [v for v in views if (state is None or v["state"] == state)
             and (executor is None or executor in (v["executor"] or ""))]
    views.sort(key=lambda v: (str(v[key] or ""), v["id"]), reverse=sort_desc)
    start = (page - 1) * page_size
    return {"items": views[start:start + page_size], "total": len(views), "page": page, "page_size": page_size}


def cancel(store: RunStore, job_id: str, reason: str = "cancelled through the API") -> dict[str, Any]:
    """Cancel the job's run (the engine cancels runs; every job of it stops): the job's view."""
    record, graph, nodes = resolve(store, job_id)
    service.cancel(store, record.run_id, reason)
    return _view(store, service._record(store, record.run_id), graph, nodes)


def retry(store: RunStore, job_id: str) -> dict[str, Any]:
    """A new attempt of the job's run (what succeeded is reused): ``{id, run_id, state, scope, attempt}``."""
    record, _, nodes = resolve(store, job_id)
    made = service.retry(store, record.run_id)
    return {"id": f"{record.run_id}:{job_key(nodes[0])}", "run_id": record.run_id, "state": made["state"],
            "scope": "run", "attempt": made["attempt"]}


def logs(store: RunStore, job_id: str, *, offset: int = 0, limit: int = 1000) -> tuple[dict[str, Any], list[LogLine]]:
    """The job's view and its lines after run log seq ``offset``, at most ``limit``."""
    record, graph, nodes = resolve(store, job_id)
    return _view(store, record, graph, nodes), _job_lines(store, record.run_id, {n.id for n in nodes}, offset, limit)


def _job_lines(store: RunStore, run_id: str, mine: set[str], offset: int, limit: int) -> list[LogLine]:
    """The lines of the nodes ``mine`` after ``offset``, at most ``limit``, in order: one read per node
    through the store's node filter (indexed), not a scan of the whole run's log (a one-line job of a
    run that logged 300,000 lines cost 2 s per call, twice with its count)."""
    found: dict[int, LogLine] = {}
    for node in sorted(mine):
        for line in store.logs(run_id, node=node, after_seq=offset, limit=limit):
            if line.node in mine:  # the filter also takes `node/...`: only the job's own nodes
                found[line.seq] = line
    return [found[seq] for seq in sorted(found)[:limit]]


def count_lines(store: RunStore, job_id: str) -> int:
    """How many log lines the job has (its nodes' lines, page by page; nothing is kept)."""
    record, _, nodes = resolve(store, job_id)
    mine = {n.id for n in nodes}
    total = after = 0
    while True:  # the job's own lines in pages (ends at the log's end), not the whole run's
        page = _job_lines(store, record.run_id, mine, after, service.MAX_LOG_LIMIT)
        if not page:
            return total
        total += len(page)
        after = page[-1].seq


def job_artifacts(store: RunStore, job_id: str) -> list[dict[str, Any]]:
    """The files the job's ``artifacts:`` collected, every attempt's."""
    from worldtree.app import artifacts

    record, _, nodes = resolve(store, job_id)
    return [a.as_json() for a in artifacts.list_artifacts(store, record.run_id, nodes[0].job)]


def job_state(states: list[str], run_state: str) -> str:
    """The state of a job whose nodes are in ``states``, in a run that is ``run_state``."""
    if NodeState.RUNNING in states:
        return "running"
    started = [s for s in states if s != NodeState.PENDING]
    if started and len(started) == len(states):
        for bad in (NodeState.FAILED, NodeState.TIMED_OUT, NodeState.CANCELLED):
            if bad in states:
                return str(bad)
        return "skipped" if all(s == NodeState.SKIPPED for s in states) else "succeeded"
    if started:
        return "running"  # between two steps
    if run_state in ("queued", "running"):
        return run_state if run_state == "queued" else "pending"
    return "cancelled" if run_state == "cancelled" else "skipped"  # the run ended before the job started


def placement(store: RunStore, record: RunRecord) -> Placement:
    """Who runs what in the run's latest attempt (executors, agents, jobs waiting for an agent)."""
    from worldtree.store.agent_snapshots import placement as read
    from worldtree.store.server_data import engine_of

    return read(engine_of(store), record.run_id, record.attempt)


def state_of(record: RunRecord, nodes: list[Node], where: Placement) -> str:
    """The job's state: :func:`job_state` of its nodes, except that a job handed to agents that no
    agent holds yet is ``pending`` (its node is dispatched, to a backend that waits for an agent)."""
    records = {n.node: n.state for n in record.nodes}
    state = job_state([records.get(n.id, NodeState.PENDING) for n in nodes], service._state(record.state))
    return "pending" if state == "running" and nodes[0].job in where.waiting else state


def _view(store: RunStore, record: RunRecord, graph: ExecutionGraph, nodes: list[Node],
          where: Placement | None = None) -> dict[str, Any]:
    """The job as plain data; ``where`` (:func:`placement`) read once per run by a caller listing many jobs."""
    where = where if where is not None else placement(store, record)
    records = {n.node: n for n in record.nodes}
    by_id = graph.by_id()
    mine = {n.id for n in nodes}
    first = nodes[0]
    node_views: list[dict[str, Any]] = []
    for n in nodes:
        r = records.get(n.id)
        node_views.append({"id": n.id, "path": n.path, "name": n.name, "command": n.command,
                           "state": r.state if r else "pending", "exit_code": r.exit_code if r else None,
                           "error": (r.error or r.reason) if r else None, "try": r.try_number if r else 0,
                           "started_at": service._iso(r.started_at) if r else None,
                           "finished_at": service._iso(r.finished_at) if r else None})
    started = [v["started_at"] for v in node_views if v["started_at"]]
    finished = [v["finished_at"] for v in node_views if v["finished_at"]]
    ran_by = [where.owners[n.id] for n in nodes if n.id in where.owners]
    return {
        "id": f"{record.run_id}:{job_key(first)}", "run_id": record.run_id, "key": job_key(first),
        "name": first.job, "stage": first.stage, "pipeline": record.name,
        "state": state_of(record, nodes, where), "attempt": record.attempt,
        "executor": ran_by[0] if ran_by else (where.attempt_owner if started else None),
        "exit_code": next((v["exit_code"] for v in reversed(node_views) if v["exit_code"] is not None), None),
        "created_at": service._iso(record.created_at), "started_at": min(started) if started else None,
        "finished_at": max(finished) if len(finished) == len(nodes) else None,
        "nodes": node_views, "env": dict(first.env), "image": first.target.image, "timeout": first.timeout,
        "allow_failure": first.allow_failure, "retry_count": first.retry.max,
        "needs": sorted({job_key(by_id[d]) for d in first.needs
                         if d not in mine and d in by_id and by_id[d].kind == "step"}),
        "label_selector": first.selector.model_dump() if first.selector is not None else None,
    }
