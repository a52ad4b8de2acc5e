"""Application service: start a run, retry one. Shared by the CLI (and later the server).

It glues the pieces: load + compile -> store a run -> engine with backends -> store writer
and console listeners -> final state. Interfaces call these functions and render results.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from worldtree.app.secrets import literal_credentials, load_secrets, secret_names
from worldtree.app.workdir import Workdir, prepare_workdir
from worldtree.backends.base import Backend, RunContext
from worldtree.compile.diagnostics import Diagnostic
from worldtree.engine.driver import RunDriver
from worldtree.engine.environment import RUN_ID_VAR
from worldtree.engine.events import EngineListener
from worldtree.engine.local import local_driver
from worldtree.engine.masking import Masker
from worldtree.errors import StoreError, UsageError
from worldtree.model.graph import ExecutionGraph
from worldtree.model.records import LogLine, NodeEvent, NodeRecord
from worldtree.model.states import DONE_OK, NodeState, RunState
from worldtree.store.api import AttemptLease, RunStore, RunWriter


@dataclass
class RunOptions:
    concurrency: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    workdir: str | None = None
    secrets_file: str | None = None
    strict: bool = False
    allow_env: list[str] = field(default_factory=list)
    allow_all_env: bool = False
    grace_seconds: float = 5.0
    inventory: str | None = None
    config_path: str | None = None
    #: what host steps inherit of this process's environment: "allowlist" for server executors
    inherit_env: Literal["all", "allowlist"] = "all"
    #: the backends the run's dispatcher uses (None: the registry's); the server routes agent jobs here
    backend_factory: Callable[[str, RunContext], Backend] | None = None


@dataclass
class RunResult:
    run_id: str
    attempt: int
    state: RunState
    nodes: dict[str, NodeState]
    #: the workdir, when it was kept for a retry (a failed run in a directory worldtree created)
    kept_workdir: str | None = None
    #: why worldtree itself ended the run (state ``error``): shown loudly by the CLI
    fault: str | None = None

    @property
    def exit_code(self) -> int:
        return 0 if self.state == RunState.SUCCEEDED else 1


@dataclass
class Prepared:
    graph: ExecutionGraph
    warnings: list[Diagnostic]


#: Called with (run_id, attempt, graph, masker) once the run exists; returns the console listener.
ListenerFactory = Callable[[str, int, ExecutionGraph, Masker], EngineListener]


def prepare(file: str, options: RunOptions) -> Prepared:
    """Load, check and compile a pipeline file (SpecError on bad input); large files via a cache."""
    from worldtree.app import graph_cache

    key = graph_cache.cache_key(file, options.strict, options.env, options.inventory)
    if key is not None:
        cached = graph_cache.load_cached(key)
        if cached is not None:
            return Prepared(*cached)
    # Only a cache miss pays for YAML, the spec models and the compiler (start-up time).
    from worldtree.app import op_checks  # noqa: F401  (checks `op:` steps while loading, lazily)
    from worldtree.compile.compiler import compile_pipeline
    from worldtree.compile.loader import load_pipeline

    loaded = load_pipeline(file, strict=options.strict)
    graph = compile_pipeline(loaded.spec, source=os.path.abspath(file), env_overrides=options.env)
    inventory = options.inventory or _relative_to(file, loaded.spec.inventory)
    if any(n.target.hosts for n in graph.nodes):
        graph = _expand_hosts(graph, inventory)
    if key is not None and (inventory is None or inventory == options.inventory):
        graph_cache.store_cached(key, graph, loaded.warnings)
    return Prepared(graph, loaded.warnings)


def _relative_to(file: str, path: str | None) -> str | None:
    if path is None:
        return None
    return path if os.path.isabs(path) else str(Path(file).resolve().parent / path)


def _expand_hosts(graph: ExecutionGraph, inventory: str | None) -> ExecutionGraph:
    if inventory is None:
        raise UsageError("jobs with `hosts:` need an inventory: set `inventory:` in the pipeline or pass --inventory")
    from worldtree.compile.fanout import expand_hosts
    from worldtree.ops.inventory import load_inventory

    return expand_hosts(graph, load_inventory(inventory))


def refuse_nested() -> None:
    """Seed 003 §15.1: a step may not start worldtree itself recursively."""
    if os.environ.get(RUN_ID_VAR) and not os.environ.get("WORLDTREE_ALLOW_NESTED"):
        raise UsageError(f"this command runs inside a step of run {os.environ[RUN_ID_VAR]}; nested pipelines "
                         "are not allowed (set WORLDTREE_ALLOW_NESTED=1 if you really mean it)")


def start_run(prepared: Prepared, store: RunStore, options: RunOptions, console: ListenerFactory) -> RunResult:
    """Create a run record and execute its first attempt.

    Everything a user can get wrong (config file, workdir, secrets file) is checked before the
    run is stored, so a usage error leaves no empty run and no directory behind.
    """
    refuse_nested()
    graph = prepared.graph
    config = _load_config(options.config_path)
    secrets, masker = _secrets_and_masker(graph, options.secrets_file)
    workdir = prepare_workdir(options.workdir or graph.workdir)
    state: RunState | None = None
    stored = False
    try:
        run_id = store.create_run(name=graph.name, source=graph.source, workdir=workdir.path,
                                  graph_json=_stored_graph(graph), options=_stored_options(options, workdir),
                                  graph_version=graph.schema_version)
        stored = True
        result = _execute(run_id, graph, workdir, store, options, config, secrets, masker, console,
                          reuse=None, expect_attempt=0)
        state = result.state
        return result
    finally:  # kept for a retry only if there is a run to retry
        workdir.release(remove=state == RunState.SUCCEEDED or not stored)


def retry_run(run_id: str, store: RunStore, options: RunOptions, console: ListenerFactory) -> RunResult:
    """A new attempt of ``run_id``: nodes that succeeded are reused, the rest and their dependents re-run.

    Two retries of one run at once: the store lets exactly one start (compare-and-set on the
    attempt number); the other gets a ConflictError. Before starting, any process an earlier
    attempt left behind (its runner was killed) is stopped, so no node ever runs twice at once.
    """
    refuse_nested()
    record = store.get_run(run_id)
    if record is None:
        raise UsageError(f"no run {run_id!r} in {store.url}; `worldtree runs` lists them")
    if record.state in (RunState.RUNNING, RunState.PENDING):
        raise UsageError(f"run {record.run_id} is still {record.state}; wait for it or `worldtree cancel "
                         f"{record.run_id}` first")
    graph = _load_graph(record.graph_json)
    stored = record.options
    merged = RunOptions(
        concurrency=options.concurrency or stored.get("concurrency"),
        secrets_file=options.secrets_file, allow_env=options.allow_env or stored.get("allow_env", []),
        allow_all_env=options.allow_all_env or stored.get("allow_all_env", False),
        grace_seconds=options.grace_seconds, config_path=options.config_path or stored.get("config_path"))
    config = _load_config(merged.config_path)
    secrets, masker = _secrets_and_masker(graph, options.secrets_file)
    reuse = _reusable(graph, record.nodes)
    workdir = prepare_workdir(record.workdir, created_as=stored.get("workdir_created_as"))
    state: RunState | None = None
    try:
        result = _execute(record.run_id, graph, workdir, store, merged, config, secrets, masker, console,
                          reuse=reuse, expect_attempt=record.attempt, reap_leftovers=True)
        state = result.state
        return result
    finally:
        workdir.release(remove=state == RunState.SUCCEEDED)


def cancel_run(run_id: str, store: RunStore, reason: str = "cancelled by user") -> str:
    """Ask every process working on ``run_id`` to cancel it (a persisted request); returns the full id."""
    record = store.get_run(run_id)
    if record is None:
        raise UsageError(f"no run {run_id!r} in {store.url}; `worldtree runs` lists them")
    if not store.request_cancel(record.run_id, reason):
        raise UsageError(f"run {record.run_id} is not running (it is {record.state}); nothing to cancel")
    return record.run_id


_UNDONE = ("rolled_back", "rollback_failed")
#: Records waiting for the store past which backends stop reading step output (backpressure): a
#: step printing faster than the store writes slows down instead of filling memory.
OUTPUT_HIGH_WATER = 20_000


def _reap_leftovers(run_id: str, grace: float) -> None:
    """Stop processes an earlier attempt of ``run_id`` left running (its worldtree was killed)."""
    try:
        from worldtree.backends.orphans import reap
    except ImportError:  # platforms without /proc: the watchdog is the only guard
        return
    reap(run_id, grace)


def _load_graph(graph_json: str) -> ExecutionGraph:
    return ExecutionGraph.model_validate_json(graph_json)


def _stored_graph(graph: ExecutionGraph) -> str:
    """The graph as stored: commands as written (secrets stay references: ``retry`` must run the real
    command), literal credentials written in the file masked (they are secrets the file leaked)."""
    literal = literal_credentials(graph)
    text = graph.model_dump_json()
    return Masker(literal).mask(text) if literal else text


def _secrets_and_masker(graph: ExecutionGraph, secrets_file: str | None) -> tuple[dict[str, str], Masker]:
    """The run's secret values, and a masker for them and for credentials written in the file.

    A node whose name holds a secret value is refused: node ids are stored and shown by every
    reader (``runs show``, ``logs``), none of which has the secrets to mask them with.
    """
    secrets = load_secrets(secret_names(graph), secrets_file)
    masker = Masker([*secrets.values(), *literal_credentials(graph)])
    if masker:
        for node in graph.nodes:
            if masker.mask(node.id) != node.id or masker.mask(node.path) != node.path:
                raise UsageError(f"the name of {masker.mask(node.path)!r} contains a secret value; rename it "
                                 "(names are stored and shown unmasked by `runs show` and `logs`)")
    return secrets, masker


def _reusable(graph: ExecutionGraph, nodes: list[NodeRecord]) -> dict[str, int]:
    """Succeeded nodes not downstream of anything that must run again -> the attempt they succeeded in."""
    by_id = {n.node: n for n in nodes}
    # A success that `on_failure: rollback` undid is no success to keep.
    rerun = {n.id for n in graph.nodes if n.id not in by_id or NodeState(by_id[n.id].state) not in DONE_OK
             or by_id[n.id].reason in _UNDONE}
    rerun = graph.descendants(rerun)
    return {node_id: _succeeded_in(rec) for node_id, rec in by_id.items() if node_id not in rerun}


def _succeeded_in(rec: NodeRecord) -> int:
    """The attempt whose result a node keeps: a node reused twice still points at the original."""
    if rec.state == NodeState.REUSED and rec.reason and rec.reason.startswith("attempt "):
        try:
            return int(rec.reason.split()[1])
        except (IndexError, ValueError):
            pass
    return rec.attempt


def _stored_options(options: RunOptions, workdir: Workdir) -> dict[str, Any]:
    return {"concurrency": options.concurrency, "env": options.env, "allow_env": options.allow_env,
            "allow_all_env": options.allow_all_env, "workdir_created": workdir.created,
            "workdir_created_as": workdir.identity if workdir.created else None,
            "config_path": os.path.abspath(options.config_path) if options.config_path else None}


class _StoreListener:
    """The engine's listener: everything goes to the store's writer first."""

    def __init__(self, writer: RunWriter) -> None:
        self.writer = writer

    def on_event(self, event: NodeEvent) -> None:
        self.writer.node_event(event)

    def on_log(self, line: LogLine) -> None:
        self.writer.log(line)


def _show_committed(console: EngineListener) -> Callable[[list[NodeEvent], list[LogLine]], None]:
    """Write first, then show: the console sees a batch only after the store committed it, in the
    order things happened (events and lines of one batch merged by time)."""

    def show(events: list[NodeEvent], lines: list[LogLine]) -> None:
        if not lines:
            for event in events:
                console.on_event(event)
            return
        if not events:
            for line in lines:
                console.on_log(line)
            return
        merged: list[tuple[Any, int, NodeEvent | LogLine]] = [(e.ts, 0, e) for e in events]
        merged.extend((line.ts, 1, line) for line in lines)
        merged.sort(key=lambda item: item[0])
        for _, kind, item in merged:
            if kind:
                console.on_log(item)  # type: ignore[arg-type]
            else:
                console.on_event(item)  # type: ignore[arg-type]

    return show


def _execute(run_id: str, graph: ExecutionGraph, workdir: Workdir, store: RunStore, options: RunOptions,
             config: dict[str, object], secrets: dict[str, str], masker: Masker, console: ListenerFactory,
             reuse: dict[str, int] | None, expect_attempt: int, reap_leftovers: bool = False,
             lease: AttemptLease | None = None, cancel_reason: str | None = None) -> RunResult:
    """Claim the next attempt (or use ``lease``, one the caller claimed: the server's executors) and run it.

    ``cancel_reason``: a cancel requested before the attempt started (a queued run), delivered
    before any node starts rather than with the first heartbeat, and not a second time by it.
    """
    if lease is None:
        lease = store.start_attempt(run_id, node_ids=[n.id for n in graph.nodes], expect_attempt=expect_attempt)
    attempt = lease.attempt
    if reap_leftovers:  # only the winner of the claim: a loser must not touch the winner's steps
        _reap_leftovers(run_id, options.grace_seconds)
    shown = console(run_id, attempt, graph, masker)
    holder: list[RunDriver] = []

    def on_cancel(reason: str) -> None:
        if holder and reason != cancel_reason:
            holder[0].cancel_threadsafe(reason)

    def on_fault(exc: BaseException) -> None:
        if holder:
            holder[0].fault_threadsafe(exc)

    writer = store.writer(run_id, attempt, token=lease.token, on_commit=_show_committed(shown),
                          on_cancel=on_cancel, on_fault=on_fault)
    ctx = RunContext(run_id=run_id, attempt=attempt, workdir=workdir.path, graph=graph,
                     grace_seconds=options.grace_seconds, allow_env=options.allow_env,
                     allow_all_env=options.allow_all_env, config=config, secret_values=masker.values,
                     inherit_env=options.inherit_env,
                     output_paused=lambda: writer.backlog > OUTPUT_HIGH_WATER)
    # jobs on agents: their agent uploads the artifacts (app/agent_artifacts.py); only the others are collected here
    if options.backend_factory is None:
        here = graph
    else:  # imported only here: it brings the agents' store and gRPC-side code (start-up time)
        from worldtree.app.agent_artifacts import collected_here

        here = collected_here(graph)
    listener: EngineListener = _StoreListener(writer)
    collected: Callable[[], None] = _nothing
    if any(scope.artifacts is not None for scope in here.scopes.values()):  # the collector's imports cost start-up
        from worldtree.app.artifacts import with_artifacts

        listener, collected = with_artifacts(listener, store, run_id, attempt, here, workdir.path)
    driver = local_driver(ctx, listener, concurrency=options.concurrency, secrets=secrets,
                          masker=masker, reuse=reuse, on_scopes=writer.scope_deadlines,
                          backend_factory=options.backend_factory)
    holder.append(driver)
    state = RunState.ERROR
    try:
        state = run_async(driver, lambda reason: store.request_cancel(run_id, reason), cancel_at_start=cancel_reason)
    finally:
        try:
            collected()  # jobs' artifacts collected (and their log lines given to the writer) first
            writer.close()
        except Exception as exc:  # the store lost the last batch: the run cannot count as succeeded
            driver.fault = driver.fault or f"{type(exc).__name__}: {exc}"
            state = RunState.ERROR
            raise
        finally:  # a store that failed to take the last batch must still learn the run ended
            _finish_bounded(store, run_id, attempt, state, lease.token,
                            wait=FINISH_WAIT_AFTER_FAULT if driver.fault else None)
    kept = workdir.path if workdir.created and state != RunState.SUCCEEDED else None
    return RunResult(run_id, attempt, state, driver.states, kept_workdir=kept, fault=driver.fault)


#: Once the store failed during the run, how long recording its end may wait (a lock another
#: session holds must not keep the process alive; readers then see the run as interrupted).
FINISH_WAIT_AFTER_FAULT = 3.0


def _finish_bounded(store: RunStore, run_id: str, attempt: int, state: RunState, token: int,
                    wait: float | None) -> None:
    """``store.finish_attempt``, given up after ``wait`` seconds (None: as long as it takes)."""
    if wait is None:
        store.finish_attempt(run_id, attempt, state.value, token=token)
        return
    import threading

    failure: list[BaseException] = []

    def finish() -> None:
        try:
            store.finish_attempt(run_id, attempt, state.value, token=token)
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=finish, name=f"worldtree-finish-{run_id}", daemon=True)
    worker.start()
    worker.join(wait)
    if worker.is_alive():
        raise StoreError(f"could not record the end of run {run_id} within {wait:g} s: the store is not taking "
                         "writes; it will show as interrupted, and `worldtree retry` can run it again")
    if failure:
        raise failure[0]


def _load_config(path: str | None) -> dict[str, object]:
    from worldtree.ops.config import load_config

    return load_config(path)


def run_async(driver: RunDriver, persist_cancel: Callable[[str], object] | None = None,
              cancel_at_start: str | None = None) -> RunState:
    """Run the driver on a fresh event loop. Ctrl-C and SIGTERM cancel it cleanly (a second one also
    stops ``post`` and ``always()`` work); the request is persisted so other processes see it too."""

    async def main() -> RunState:
        loop = asyncio.get_running_loop()

        def on_signal(name: str) -> None:
            reason = f"cancelled by {name}"
            driver.cancel(reason)
            if persist_cancel is not None:
                loop.run_in_executor(None, _quietly, persist_cancel, reason)

        for sig, name in ((signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")):
            try:
                loop.add_signal_handler(sig, on_signal, name)
            except (NotImplementedError, RuntimeError):  # not the main thread
                pass
        if cancel_at_start is not None:  # runs right after Begin, before a dispatched step's task starts
            loop.call_soon(driver.cancel, cancel_at_start)
        return await driver.run()

    return asyncio.run(main())


def _quietly(fn: Callable[[str], object], reason: str) -> None:
    try:
        fn(reason)
    except Exception as exc:  # the local cancel already happened; persisting it is best effort
        print(f"worldtree: could not record the cancel request: {exc}", file=sys.stderr)


def _nothing() -> None:
    """No artifacts to wait for."""
