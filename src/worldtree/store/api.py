"""What the engine and the CLI need from a run store. ``worldtree.store.sql`` implements it.

Contract:

* ``open_store(url)`` migrates the schema to head (Alembic) and is safe to call from several
  processes at once. ``None`` means the embedded default: SQLite at ``.worldtree/worldtree.db``
  under the current directory (``WORLDTREE_STORE`` overrides it).
* Writes during a run go through a :class:`RunWriter`: ``node_event`` and ``log`` only append
  to memory and return at once; a background thread flushes batches (every ~100 ms or 500
  items) in one transaction each, so the store is never the bottleneck. ``close()`` flushes
  everything and stops the thread.
* The running attempt carries a heartbeat (the writer refreshes it at least every 2 s) and the
  pid + hostname of its process. A run whose attempt is ``running`` but whose process is gone
  (same host, pid dead) or whose heartbeat is older than 30 s is reported as ``interrupted``
  by ``get_run``/``list_runs``; a SIGKILL at any moment leaves a store the next command reads.
* ``logs(run_id, node=..., after_seq=...)`` returns lines in order; ``follow`` is a polling
  loop over it done by the caller (the CLI), ending when the run is no longer running.
* Node ids passed to ``logs(node=...)`` match the node id exactly or as a ``/``-prefix
  (a job id returns all its steps' lines).
"""

from __future__ import annotations

from typing import Any, Protocol

from worldtree.model.records import LogLine, NodeEvent, NodeRecord, RunRecord


class RunWriter(Protocol):
    def node_event(self, event: NodeEvent) -> None: ...

    def log(self, line: LogLine) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class RunStore(Protocol):
    url: str

    def create_run(self, *, name: str, source: str | None, workdir: str, graph_json: str,
                   options: dict[str, Any]) -> str:
        """A new run (state pending, attempt 0); returns its id (sortable: newest sorts last)."""
        ...

    def start_attempt(self, run_id: str) -> int:
        """Begin attempt N+1 (state running, pid/host/heartbeat set); returns N+1."""
        ...

    def writer(self, run_id: str, attempt: int) -> RunWriter: ...

    def finish_attempt(self, run_id: str, attempt: int, state: str) -> None:
        """Record the attempt's and the run's final state (a RunState value)."""
        ...

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run with its latest attempt's node records (``nodes``), or None. Accepts a unique id prefix."""
        ...

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        """Newest first, without ``nodes`` and ``graph_json`` filled (cheap)."""
        ...

    def node_records(self, run_id: str, attempt: int | None = None) -> list[NodeRecord]: ...

    def logs(self, run_id: str, *, node: str | None = None, after_seq: int = 0,
             limit: int | None = None) -> list[LogLine]: ...

    def close(self) -> None: ...
