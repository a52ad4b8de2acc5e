"""An executor: claims queued runs from the store and runs them with the local machinery.

The server starts ``--executors N`` of them, each on its own thread; the agents issue will run
the same loop remotely. The queue is the store: :meth:`RunStore.claimable_runs` lists queued
runs (pending, or whose runner died), and ``start_attempt(expect_attempt=seen)`` is the claim, a
compare-and-set of which exactly one executor of any replica wins. The attempt's writer renews
the lease; a replica killed with ``kill -9`` stops renewing, and when its lease ends (at once on
the same host, where its pid is gone) another executor takes the run over as a new attempt that
reuses the nodes that succeeded — what ``worldtree retry`` does. ``finish_attempt`` is fenced by
the claim's token, so every attempt, and the run, ends exactly once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import structlog

from worldtree.app import agents, events
from worldtree.app.runs import (
    RunOptions,
    RunResult,
    _execute,
    _load_config,
    _load_graph,
    _reap_leftovers,
    _reusable,
)
from worldtree.app.secrets import literal_credentials, secret_names
from worldtree.app.workdir import MARKER, prepare_workdir
from worldtree.engine.masking import Masker
from worldtree.errors import ConflictError, StoreError
from worldtree.model.graph import ExecutionGraph
from worldtree.model.states import RunState
from worldtree.store import admission
from worldtree.store.api import LEASE_SECONDS, AttemptLease, RunStore

log = logging.getLogger("worldtree.executor")

#: How often an idle executor looks at the queue when nothing woke it.
POLL_SECONDS = 0.5


class Executor:
    """Claims and runs one run at a time until ``stop`` is set."""

    def __init__(self, store: RunStore, *, name: str, lease_seconds: float = LEASE_SECONDS,
                 grace_seconds: float = 5.0, wake: threading.Event | None = None,
                 on_result: Callable[[RunResult, float], None] | None = None,
                 poll_seconds: float = POLL_SECONDS,
                 secret_values: Callable[[list[str]], dict[str, str]] | None = None,
                 max_concurrent: int | None = None) -> None:
        self.store = store
        #: queued runs running at once across every replica (checked at claim time, in the store)
        self.max_concurrent = max_concurrent
        self.name = name
        self.lease_seconds = lease_seconds
        self.grace_seconds = grace_seconds
        self.wake = wake or threading.Event()
        self.on_result = on_result
        self.poll_seconds = poll_seconds
        #: the server's secret store (names -> values); None: no secret resolves (a step needing one fails)
        self.secret_values = secret_values

    def serve(self, stop: threading.Event) -> None:
        """Loop: run what can be claimed, else wait for a wake-up or the poll interval."""
        while not stop.is_set():
            try:
                worked = self.run_one()
            except StoreError as exc:  # the store is away: try again later, loudly
                log.error("executor %s: %s", self.name, exc)
                worked = False
            except Exception:  # a run that broke worldtree must not take the executor with it
                log.exception("executor %s: a run ended with an internal error", self.name)
                worked = True
            if not worked:
                self.wake.wait(self.poll_seconds)
                self.wake.clear()

    def run_one(self) -> bool:
        """Claim one queued run and run it to its end; False when nothing could be claimed.

        The oldest 20 queued runs are tried in order; when every one of them waits behind its
        concurrency group, the oldest 200 (a run of another group must not starve behind them).
        ``--max-concurrent`` reached ends the round: no other run could start either."""
        for limit in (20, 200):
            candidates = self.store.claimable_runs(limit=limit)
            held = 0
            for run_id, seen in candidates:
                outcome = self._claim(run_id, seen)
                if outcome == "ran":
                    return True
                if outcome == "full":  # --max-concurrent reached
                    return False
                held += outcome == "held"
            if not candidates or held < len(candidates):  # (the store's limit also counts live runs it skips)
                return False
        return False

    def _claim(self, run_id: str, seen: int) -> Literal["ran", "lost", "held", "full"]:
        """Claim ``run_id`` and run it to its end (``ran``); ``lost``: another executor won it (or it is
        gone); ``held``: its concurrency group holds it back; ``full``: ``--max-concurrent`` is reached."""
        record = self.store.get_run(run_id)
        if record is None:
            return "lost"
        graph = _load_graph(record.graph_json)
        try:  # the claim, if --max-concurrent and the run's concurrency group allow it now
            lease, cancel_reason = admission.claim(
                admission.engine_of(self.store), run_id, node_ids=[n.id for n in graph.nodes], expect_attempt=seen,
                lease_seconds=self.lease_seconds, max_concurrent=self.max_concurrent)
        except ConflictError:  # another executor (of any replica) won it
            return "lost"
        except admission.Waiting as why:
            return "full" if str(why).startswith("max-concurrent") else "held"
        events.emit(self.store, events.RUN_STARTED, run_id, attempt=lease.attempt, executor=self.name,
                    owner=lease.owner)
        reuse = _reusable(graph, record.nodes) if seen else None
        log.info("executor %s: run %s attempt %d", self.name, run_id, lease.attempt,
                 extra={"run_id": run_id, "attempt": lease.attempt, "executor": self.name})
        # A cancel made while the run waited: delivered before anything starts. (A claim clears
        # the request of an earlier attempt; a queued retry or takeover must still honour it.)
        started = time.monotonic()
        # every log line of this run (this thread, and the run's event loop, which copies the context)
        with structlog.contextvars.bound_contextvars(run_id=run_id, attempt=lease.attempt, executor=self.name):
            result = self._run(record.run_id, graph, record.workdir, record.options, lease, reuse,
                               takeover=bool(seen), cancel_reason=cancel_reason)
        events.reconcile(self.store, run_id, lease.attempt)  # node events a kill -9 took, before the end
        events.emit(self.store, events.RUN_FINISHED, run_id, attempt=lease.attempt, state=str(result.state),
                    executor=self.name)
        if self.on_result is not None:
            self.on_result(result, time.monotonic() - started)
        return "ran"

    def _run(self, run_id: str, graph: ExecutionGraph, workdir_path: str, stored: dict[str, object],
             lease: AttemptLease, reuse: dict[str, int] | None, *, takeover: bool,
             cancel_reason: str | None) -> RunResult:
        try:
            # The server's environment is a service's, not the submitter's: no secret comes from it,
            # only from the server's secret store (a step naming a secret it lacks fails as missing).
            secrets = self.secret_values(secret_names(graph)) if self.secret_values else {}
            masker = Masker([*secrets.values(), *literal_credentials(graph)])
            config = _load_config(None)
            # the parent exists first: a workdir removes the outermost directory it created, and
            # ``workspaces/`` is shared by every run
            os.makedirs(os.path.dirname(workdir_path), exist_ok=True)
            workdir = prepare_workdir(workdir_path, created_as=_marker(workdir_path))
        except Exception as exc:  # the claim is ours: the run must still end, as error
            self.store.finish_attempt(run_id, lease.attempt, RunState.ERROR.value, token=lease.token)
            return RunResult(run_id, lease.attempt, RunState.ERROR, {}, fault=f"{type(exc).__name__}: {exc}")
        if takeover:  # only the winner of the claim: processes the dead attempt left behind go first
            _reap_leftovers(run_id, self.grace_seconds)
        allow_env = stored.get("allow_env")
        options = RunOptions(grace_seconds=self.grace_seconds, inherit_env="allowlist",
                             allow_env=list(allow_env) if isinstance(allow_env, list) else [],
                             backend_factory=agents.backend_factory(self.store, graph))
        state: RunState | None = None
        try:
            result = _execute(run_id, graph, workdir, self.store, options, config, secrets, masker,
                              events.node_feed(self.store, self.name),
                              reuse=reuse, expect_attempt=lease.attempt - 1, lease=lease, cancel_reason=cancel_reason)
            state = result.state
            return result
        finally:
            workdir.release(remove=state == RunState.SUCCEEDED)


def _marker(path: str) -> str | None:
    """The workspace's own marker: the server made every workspace, so an existing one is ours."""
    try:
        return (Path(path) / MARKER).read_text().strip() or None
    except OSError:
        return None
