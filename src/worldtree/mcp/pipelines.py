"""MCP tools over worldtree's own pipelines: validate, submit, list, get, logs, cancel, retry, explain.

Every tool is a translation: arguments in, one call of the run operations out. The operations
come from :class:`worldtree.app.local_runs.LocalRuns` (this process's store and executor; the
default) or :class:`worldtree.app.remote.RemoteRuns` (``worldtree mcp --server URL``): both speak
:mod:`worldtree.app.service`'s data, so an assistant sees the same JSON either way, and the same
JSON the REST API returns.

Without ``--server``, ``runs.submit`` and ``runs.retry`` run commands on the MCP server's own
machine, so they are refused unless it was started with ``--allow-local-runs`` (against a server,
the server's roles decide: a token with the maintainer role).

Errors: an argument that names nothing (an unknown run, a bad page, an unknown state) is a
JSON-RPC ``invalid params`` error; a document that does not load is a tool error carrying its
located messages (``pipeline.yaml:3:5: error: …``) so the assistant can fix it; an operation the
run's state does not allow, or a server that cannot be reached, is a tool error saying so.
Nothing an assistant sends ends the MCP server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS

from worldtree.app.service import StateConflictError
from worldtree.errors import ConflictError, SpecError, UsageError, WorldtreeError
from worldtree.store.api import RunStore

#: Lines of a job's log ``jobs.explain`` quotes (its tail).
EXPLAIN_TAIL = 20
#: Jobs ``jobs.explain`` describes at most (each costs log reads); ``more_jobs`` counts the rest.
EXPLAIN_JOBS = 50
#: Log pages ``jobs.explain`` reads at most to find that tail (1,000 lines a page).
EXPLAIN_PAGES = 20


class Runs(Protocol):
    """What :class:`LocalRuns` and :class:`RemoteRuns` both offer."""

    def submit(self, document: str, *, env: dict[str, str] | None = None,
               filename: str = "<request>") -> dict[str, Any]: ...
    def list_runs(self, *, page: int = 1, page_size: int = 50, state: str | None = None,
                  pipeline: str | None = None) -> dict[str, Any]: ...
    def get_run(self, run_id: str) -> dict[str, Any]: ...
    def logs(self, run_id: str, *, node: str | None = None, offset: int = 0,
             limit: int = 1000) -> dict[str, Any]: ...
    def cancel(self, run_id: str) -> dict[str, Any]: ...
    def explain_job(self, job_id: str) -> dict[str, Any]: ...
    def retry(self, run_id: str) -> dict[str, Any]: ...
    def close(self) -> None: ...


class LazyRuns:
    """Opens the runs backend on first use (a stack-only session never creates a store) and closes it once."""

    def __init__(self, factory: Callable[[], Runs], *, may_run: bool = True) -> None:
        """``may_run``: whether ``runs.submit`` and ``runs.retry`` may start work (False: refused)."""
        self._factory = factory
        self.may_run = may_run
        self._runs: Runs | None = None
        self._lock = threading.Lock()

    def get(self) -> Runs:
        with self._lock:
            if self._runs is None:
                self._runs = self._factory()
            return self._runs

    def store(self) -> RunStore | None:
        """The local run store (None when the runs live on a server): stack state and apply records go there."""
        store = getattr(self.get(), "store", None)
        return store if store is not None else None

    def close(self) -> None:
        with self._lock:
            runs, self._runs = self._runs, None
        if runs is not None:
            runs.close()


@contextmanager
def _translated() -> Iterator[None]:
    """worldtree's errors → MCP's: invalid params, or a tool error the assistant reads."""
    try:
        yield
    except SpecError as exc:
        raise ToolError(str(exc)) from None
    except (StateConflictError, ConflictError) as exc:
        raise ToolError(str(exc)) from None
    except UsageError as exc:
        raise MCPError(INVALID_PARAMS, str(exc)) from None
    except WorldtreeError as exc:
        raise ToolError(str(exc)) from None


def register(server: MCPServer, runs: LazyRuns) -> None:
    """Add the pipeline tools to ``server``."""

    @server.tool(name="pipeline.validate",
                 description="Check a pipeline document (YAML text): {ok, name, nodes, warnings[], errors[]}, "
                             "each problem with line and column.")
    def validate(document: str, filename: str = "pipeline.yaml", strict: bool = False) -> dict[str, Any]:
        return validate_pipeline(document, filename, strict)

    @server.tool(name="runs.submit", description="Queue a pipeline document (YAML text) as a run; returns its id.")
    def submit(document: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        _may_run(runs)
        with _translated():
            return runs.get().submit(document, env=env, filename="pipeline.yaml")

    @server.tool(name="runs.list", description="Runs, newest first: {items, total, page, page_size}.")
    def list_runs(state: str | None = None, pipeline: str | None = None, page: int = 1,
                  page_size: int = 20) -> dict[str, Any]:
        with _translated():
            return runs.get().list_runs(page=page, page_size=page_size, state=state, pipeline=pipeline)

    @server.tool(name="runs.get", description="One run (id or unique prefix) with its jobs' states.")
    def get(run_id: str) -> dict[str, Any]:
        with _translated():
            return runs.get().get_run(run_id)

    @server.tool(name="runs.logs",
                 description="A run's log lines after sequence number `offset` (masked): {items, next_offset, "
                             "state, finished}; call again with offset=next_offset until finished.")
    def logs(run_id: str, node: str | None = None, offset: int = 0, limit: int = 500) -> dict[str, Any]:
        with _translated():
            backend = runs.get()
            page = backend.logs(run_id, node=node, offset=offset, limit=limit)
            state = backend.get_run(page["run_id"])["state"]
        return {**page, "state": state, "finished": state in _FINAL}

    @server.tool(name="runs.cancel", description="Ask for a queued or running run to be cancelled.")
    def cancel(run_id: str) -> dict[str, Any]:
        with _translated():
            return runs.get().cancel(run_id)

    @server.tool(name="runs.retry",
                 description="Queue a new attempt of a run that did not succeed (succeeded jobs are reused).")
    def retry(run_id: str) -> dict[str, Any]:
        _may_run(runs)
        with _translated():
            return runs.get().retry(run_id)

    @server.tool(name="jobs.explain",
                 description="Why a run's jobs are in their state: for each job not succeeded (or the one "
                             "named), its state, exit code, error or reason, and the tail of its log; for a "
                             "pending job, why each agent can or cannot take it.")
    def explain(run_id: str, job: str | None = None) -> dict[str, Any]:
        with _translated():
            return explain_run(runs.get(), run_id, job)


def _may_run(runs: LazyRuns) -> None:
    if not runs.may_run:
        raise ToolError("this MCP server runs pipelines on its own machine and was not allowed to: an operator "
                        "starts it with --allow-local-runs, or with --server URL to run them on a worldtree server")


_FINAL = frozenset({"succeeded", "failed", "cancelled", "timed_out", "error"})


def validate_pipeline(document: str, filename: str, strict: bool) -> dict[str, Any]:
    """Load and compile like ``worldtree validate``; problems are data here, not an error."""
    from worldtree.compile.compiler import compile_pipeline
    from worldtree.compile.loader import load_pipeline_text

    try:
        loaded = load_pipeline_text(document, filename, strict=strict)
        graph = compile_pipeline(loaded.spec, source=None)
    except SpecError as exc:
        return {"ok": False, "errors": [d.as_dict() for d in exc.diagnostics]}
    except UsageError as exc:
        return {"ok": False, "errors": [{"severity": "error", "message": str(exc), "file": filename}]}
    return {"ok": True, "name": graph.name, "nodes": [n.path for n in graph.nodes],
            "warnings": [d.as_dict() for d in loaded.warnings], "errors": []}


def explain_run(backend: Runs, run_id: str, job: str | None) -> dict[str, Any]:
    """What the run's record says about its jobs, in words, with each one's log tail.

    Built from ``get_run``, ``logs`` and ``explain_job`` (for pending jobs: which agents could take
    them), so it works locally and against any server.
    """
    run = backend.get_run(run_id)
    nodes = run.get("nodes") or []
    if job is not None:
        chosen = [n for n in nodes if job in (n["id"], n["path"]) or str(n["path"]).startswith(job + "/")]
        if nodes and not chosen:
            raise UsageError(f"run {run['id']} has no job {job!r}; runs.get lists its jobs")
    else:
        chosen = [n for n in nodes if n["state"] != "succeeded"]
    jobs = [{"id": n["id"], "path": n["path"], "state": n["state"], "exit_code": n.get("exit_code"),
             "why": _why(n), "log_tail": _tail(backend, run["id"], n["id"])} for n in chosen[:EXPLAIN_JOBS]]
    out: dict[str, Any] = {"run_id": run["id"], "state": run["state"], "attempt": run.get("attempt"), "jobs": jobs,
                           "summary": _summary(run, jobs)}
    if len(chosen) > EXPLAIN_JOBS:
        out["more_jobs"] = len(chosen) - EXPLAIN_JOBS  # name one with `job` to see it
    waiting = {_job_key(j["id"]) for j in jobs if j["state"] in ("pending", "queued")}
    if not nodes and run["state"] == "queued":  # not claimed yet: no node has a state
        out["summary"] = f"run {run['id']} is queued: no executor or agent has taken it yet"
        waiting = {job.replace("/", ".")} if job else set()
    if waiting:  # which agents could take them, and why not (worldtree.app.explain)
        out["pending"] = [_pending(backend, f"{run['id']}:{key}") for key in sorted(waiting)]
    return out


def _job_key(node_id: str) -> str:
    """A node's job as app.jobs names it: the id without the step, ``/`` as ``.``."""
    return node_id.rsplit("/", 1)[0].replace("/", ".")


def _pending(backend: Runs, job_id: str) -> dict[str, Any]:
    try:
        found = backend.explain_job(job_id)
    except WorldtreeError as exc:  # e.g. a server without the agents feature
        return {"job_id": job_id, "error": str(exc)}
    return {"job_id": job_id, "summary": found.get("summary"), "agents": found.get("agents") or []}


def _why(node: dict[str, Any]) -> str:
    state, error, reason = node["state"], node.get("error"), node.get("reason")
    if state == "succeeded":
        return "it succeeded"
    if state == "failed":
        code = node.get("exit_code")
        if code is None:
            return f"it failed: {error or 'no error recorded'}"
        return f"it ran and exited with code {code}" + (f": {error}" if error else "")
    if state in ("skipped", "omitted"):
        if reason == "upstream":
            return "it never ran: a job it needs did not succeed"
        return f"it was skipped ({reason or 'its condition was false'})"
    if state == "timed_out":
        return f"it passed its timeout{': ' + error if error else ''}"
    if state == "cancelled":
        said = reason or error
        return f"it was cancelled: {said}" if said else "it was cancelled"
    if state == "error":
        return f"worldtree or a backend broke while running it: {error or reason or 'no error recorded'}"
    if state == "running":
        return "it is running"
    return "it has not started: it waits for the jobs it needs, or for an executor"


def _tail(backend: Runs, run_id: str, node: str) -> list[str]:
    """The last :data:`EXPLAIN_TAIL` lines of ``node``'s log: where a failure says why.

    A short log is read whole. A long one (more than a page) is not read from its start: the
    sequence number of its last line is found with one-line reads (galloping, then halving), then
    lines are read from a window before it, widened until it holds the tail. Bounded in reads
    whatever the log's length (it showed lines 19,981-20,000 of a job that failed at line 50,000).
    """
    page = backend.logs(run_id, node=node, offset=0, limit=1000)
    lines = [str(line["line"]) for line in page["items"]]
    if len(page["items"]) < 1000:
        return lines[-EXPLAIN_TAIL:]

    def after(offset: int) -> bool:
        return bool(backend.logs(run_id, node=node, offset=offset, limit=1)["items"])

    low, high = int(page["next_offset"]), int(page["next_offset"]) * 2 + 1  # a line after low; none after high?
    for _ in range(64):
        if not after(high):
            break
        low, high = high, high * 2
    while high - low > 1:  # invariant: a line is after low, none after high
        middle = (low + high) // 2
        low, high = (middle, high) if after(middle) else (low, middle)
    last = high  # the node's last line has sequence number `high`
    width = 4 * EXPLAIN_TAIL
    while True:
        start = max(0, last - width)
        window: list[str] = []
        offset = start
        for _ in range(EXPLAIN_PAGES):
            got = backend.logs(run_id, node=node, offset=offset, limit=1000)
            window = (window + [str(line["line"]) for line in got["items"]])[-EXPLAIN_TAIL:]
            if len(got["items"]) < 1000:
                break
            offset = got["next_offset"]
        if len(window) >= EXPLAIN_TAIL or start == 0:
            return window
        width *= 16  # the node's lines are sparse among the run's: look further back


def _summary(run: dict[str, Any], jobs: list[dict[str, Any]]) -> str:
    if not jobs:
        return f"run {run['id']} is {run['state']}; every job succeeded"
    first = jobs[0]
    return f"run {run['id']} is {run['state']}; {first['path']}: {first['why']}" + (
        f" (and {len(jobs) - 1} more job(s) not succeeded)" if len(jobs) > 1 else "")
