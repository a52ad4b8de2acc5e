"""The run operations of :mod:`worldtree.app.service` on a store this process opens, with its own executor.

The twin of :class:`worldtree.app.remote.RemoteRuns` (same method names, same data back), for an
interface that serves without a ``worldtree server`` (``worldtree mcp`` with no ``--server``):
a submitted run is queued in the store exactly as the server queues it, and one
:class:`~worldtree.app.executor.Executor` thread of this process claims and runs it.

Contract: ``close`` stops claiming and lets a run under way finish for up to ``drain_seconds``;
what still runs then is left to its lease, as a stopping server replica leaves it: the next
process serving that store (or ``worldtree retry``) takes it over as a new attempt.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from worldtree.app import service
from worldtree.app.executor import Executor
from worldtree.store.api import RunStore


class LocalRuns:
    """Runs in ``store``; workspaces under ``data_dir/workspaces``; ``executors`` claiming threads."""

    def __init__(self, store: RunStore, data_dir: str | Path, *, executors: int = 1,
                 drain_seconds: float = 10.0) -> None:
        self.store = store
        self.config = service.ServiceConfig(str(data_dir))
        self.drain_seconds = drain_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads = []
        for number in range(executors):
            executor = Executor(store, name=f"local-executor-{number + 1}", wake=self._wake)
            thread = threading.Thread(target=executor.serve, args=(self._stop,), name=executor.name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        """Stop claiming, drain, close the store (safe to call twice)."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(self.drain_seconds)
        self._threads = []
        self.store.close()

    def submit(self, document: str, *, env: dict[str, str] | None = None,
               filename: str = "<request>") -> dict[str, Any]:
        created = service.submit(self.store, self.config, document, env=env, filename=filename)
        self._wake.set()
        return created

    def list_runs(self, *, page: int = 1, page_size: int = 50, state: str | None = None,
                  pipeline: str | None = None) -> dict[str, Any]:
        return service.list_runs(self.store, page=page, page_size=page_size,
                                 state="pending" if state == "queued" else state, pipeline=pipeline)

    def get_run(self, run_id: str) -> dict[str, Any]:
        return service.get_run(self.store, run_id)

    def logs(self, run_id: str, *, node: str | None = None, offset: int = 0, limit: int = 1000) -> dict[str, Any]:
        full, lines = service.logs(self.store, run_id, node=node, offset=offset, limit=limit)
        return {"run_id": full, "items": [service.line_json(line) for line in lines],
                "next_offset": lines[-1].seq if lines else offset}

    def cancel(self, run_id: str) -> dict[str, Any]:
        return service.cancel(self.store, run_id)

    def explain_job(self, job_id: str) -> dict[str, Any]:
        """Why a job (``RUN_ID:KEY``) is pending: :func:`worldtree.app.explain.explain`."""
        from worldtree.app.explain import explain

        return explain(self.store, job_id)

    def retry(self, run_id: str) -> dict[str, Any]:
        result = service.retry(self.store, run_id)
        self._wake.set()
        return result
