"""Application service: start a run, retry one. Shared by the CLI (and later the server).

It glues the pieces: load + compile -> store a run -> engine with backends -> store writer
and console listeners -> final state. Interfaces call these functions and render results.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worldtree.app.secrets import literal_credentials, load_secrets, secret_names
from worldtree.app.workdir import prepare_workdir
from worldtree.backends.base import RunContext
from worldtree.compile.diagnostics import Diagnostic
from worldtree.engine.environment import RUN_ID_VAR
from worldtree.engine.events import EngineListener, Fanout
from worldtree.engine.masking import Masker
from worldtree.engine.scheduler import Engine
from worldtree.errors import UsageError
from worldtree.model.graph import ExecutionGraph
from worldtree.model.records import LogLine, NodeEvent, NodeRecord
from worldtree.model.states import DONE_OK, NodeState, RunState
from worldtree.store.api import RunStore, RunWriter


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


@dataclass
class RunResult:
    run_id: str
    attempt: int
    state: RunState
    nodes: dict[str, NodeState]

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
    """Create a run record and execute its first attempt."""
    refuse_nested()
    graph = prepared.graph
    workdir = prepare_workdir(options.workdir or graph.workdir)
    secrets, masker = _secrets_and_masker(graph, options.secrets_file)
    run_id = store.create_run(name=graph.name, source=graph.source, workdir=workdir.path,
                              graph_json=masker.mask(graph.model_dump_json()),
                              options=_stored_options(options, workdir.created))
    try:
        return _execute(run_id, graph, workdir.path, store, options, secrets, masker, console, reuse=None)
    finally:
        workdir.cleanup()


def retry_run(run_id: str, store: RunStore, options: RunOptions, console: ListenerFactory) -> RunResult:
    """A new attempt of ``run_id``: nodes that succeeded are reused, the rest and their dependents re-run."""
    refuse_nested()
    record = store.get_run(run_id)
    if record is None:
        raise UsageError(f"no run {run_id!r} in {store.url}; `worldtree runs` lists them")
    if record.state == RunState.RUNNING:
        raise UsageError(f"run {record.run_id} is still running; wait for it or stop it first")
    graph = ExecutionGraph.model_validate_json(record.graph_json)
    stored = record.options
    merged = RunOptions(
        concurrency=options.concurrency or stored.get("concurrency"),
        secrets_file=options.secrets_file, allow_env=options.allow_env or stored.get("allow_env", []),
        allow_all_env=options.allow_all_env or stored.get("allow_all_env", False),
        grace_seconds=options.grace_seconds, config_path=options.config_path or stored.get("config_path"))
    reuse = _reusable(graph, record.nodes)
    workdir = prepare_workdir(record.workdir)
    secrets, masker = _secrets_and_masker(graph, options.secrets_file)
    try:
        return _execute(record.run_id, graph, workdir.path, store, merged, secrets, masker, console, reuse=reuse)
    finally:
        # A run that finished removed the directory it created: one there now is the user's. Only
        # an interrupted run can have left its own behind.
        if stored.get("workdir_created") and record.state == RunState.INTERRUPTED:
            workdir.created = True
        workdir.cleanup()


_UNDONE = ("rolled_back", "rollback_failed")


def _secrets_and_masker(graph: ExecutionGraph, secrets_file: str | None) -> tuple[dict[str, str], Masker]:
    """The run's secret values, and a masker for them and for credentials written in the file."""
    secrets = load_secrets(secret_names(graph), secrets_file)
    return secrets, Masker([*secrets.values(), *literal_credentials(graph)])


def _reusable(graph: ExecutionGraph, nodes: list[NodeRecord]) -> dict[str, NodeRecord]:
    """Succeeded nodes not downstream of anything that must run again."""
    by_id = {n.node: n for n in nodes}
    # A success that `on_failure: rollback` undid is no success to keep.
    rerun = {n.id for n in graph.nodes if n.id not in by_id or NodeState(by_id[n.id].state) not in DONE_OK
             or by_id[n.id].reason in _UNDONE}
    rerun = graph.descendants(rerun)
    return {node_id: rec for node_id, rec in by_id.items() if node_id not in rerun}


def _stored_options(options: RunOptions, workdir_created: bool) -> dict[str, Any]:
    return {"concurrency": options.concurrency, "env": options.env, "allow_env": options.allow_env,
            "allow_all_env": options.allow_all_env, "workdir_created": workdir_created,
            "config_path": os.path.abspath(options.config_path) if options.config_path else None}


class _StoreListener:
    def __init__(self, writer: RunWriter) -> None:
        self.writer = writer

    def on_event(self, event: NodeEvent) -> None:
        self.writer.node_event(event)

    def on_log(self, line: LogLine) -> None:
        self.writer.log(line)


def _execute(run_id: str, graph: ExecutionGraph, workdir: str, store: RunStore, options: RunOptions,
             secrets: dict[str, str], masker: Masker, console: ListenerFactory,
             reuse: dict[str, NodeRecord] | None) -> RunResult:
    attempt = store.start_attempt(run_id)
    writer = store.writer(run_id, attempt)
    ctx = RunContext(run_id=run_id, attempt=attempt, workdir=workdir, graph=graph,
                     grace_seconds=options.grace_seconds, allow_env=options.allow_env,
                     allow_all_env=options.allow_all_env, config=_load_config(options.config_path),
                     secret_values=masker.values)
    listener = Fanout(_StoreListener(writer), console(run_id, attempt, graph, masker))
    engine = Engine(ctx, listener, concurrency=options.concurrency, secrets=secrets, masker=masker, reuse=reuse)
    state = RunState.FAILED
    try:
        state = run_async(engine)
    finally:
        try:
            writer.close()
        finally:  # a store that failed to take the last batch must still learn the run ended
            store.finish_attempt(run_id, attempt, state.value)
    return RunResult(run_id, attempt, state, engine.states)


def _load_config(path: str | None) -> dict[str, object]:
    from worldtree.ops.config import load_config

    return load_config(path)


def run_async(engine: Engine) -> RunState:
    """Run the engine on a fresh event loop; Ctrl-C and SIGTERM cancel it cleanly."""

    async def main() -> RunState:
        loop = asyncio.get_running_loop()
        for sig, name in ((signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")):
            try:
                loop.add_signal_handler(sig, engine.cancel, f"cancelled by {name}")
            except (NotImplementedError, RuntimeError):  # not the main thread
                pass
        return await engine.run()

    return asyncio.run(main())
