"""What the engine and the CLI need from a run store: the contract both stores keep.

``open_store(url)`` returns a :class:`RunStore`. ``None`` means the embedded default: SQLite at
``.worldtree/worldtree.db`` under the current directory (``WORLDTREE_STORE`` overrides it). It
migrates the schema to head (Alembic) and is safe to call from several processes at once.

Call order for one attempt (any process may make it: the state lives in the store)::

    lease = store.start_attempt(run_id, node_ids=[...], expect_attempt=seen)  # claim, or ConflictError
    w = store.writer(run_id, lease.attempt, token=lease.token, on_commit=..., on_cancel=..., on_fault=...)
    w.node_event(...); w.log(...); w.scope_deadlines(...)  # memory only, return at once
    w.close()                                               # last batch; StoreError if it cannot be written
    store.finish_attempt(run_id, lease.attempt, state, token=lease.token)  # ConflictError if fenced

Claims and leases:

* ``start_attempt`` is a compare-and-set: it succeeds only while the run's attempt is still
  ``expect_attempt`` (None: whatever it is now) and that attempt is not live. Live = ``running``,
  lease not expired and, on the same host, its pid alive. Of two processes retrying one run at
  once exactly one wins; the other gets :class:`ConflictError`. The claim increments the run's
  ``fence``; the new value is the attempt's ``token``. Every node id gets a ``pending`` row:
  ``node_ids`` must name every node the writer will report on.
* The writer renews the lease every second (``LEASE_SECONDS`` = 30 s). A renewal the token no
  longer matches means another process took the run over: ``on_fault(ConflictError)``; stop.
* ``get_run``/``list_runs`` report a ``running`` run whose lease expired, or whose process on
  this host is gone, as ``interrupted`` (computed when reading, never written back); a SIGKILL at
  any moment leaves a store the next command reads and ``retry`` may claim.
* ``request_cancel`` persists the wish; the writer's heartbeat reads it and calls
  ``on_cancel(reason)`` once. A cancel belongs to the attempt it was made for (a retry starts
  without it); one made while the run is pending applies to its first attempt.
* Node claims (server/agents): ``claim_node`` is pending→running with an owner, a lease and a
  new token per claim; ``renew_node_lease`` checks the token; ``expired_node_leases`` lists the
  claims to take back.

Writing (:class:`RunWriter`): ``node_event``/``log`` append to memory; a background thread writes
a batch (every ~100 ms or 500 items) in one transaction. Log ``seq`` comes from the database
(``runs.log_seq``): two writers of one run never duplicate or interleave, and commits happen in
``seq`` order, so a follower polling ``logs(after_seq=…)`` never skips a line. Node events are
compare-and-set updates (:mod:`worldtree.store.transitions`); a refused one goes to ``on_fault``.
``on_commit(events, lines)`` is called after each commit with the lines' ``seq`` set: consoles
show what the store has (write first, then show). A store that keeps failing for
``FAULT_AFTER`` (5 s), or ``MAX_BUFFERED`` waiting records, is ``on_fault(StoreError)``. Callback
exceptions go to ``on_fault``; ``on_fault`` is called at most once.

Reading: ``logs(run_id, node=..., after_seq=...)`` returns lines in ``seq`` order; ``follow`` is
a polling loop over it done by the caller. Node ids passed to ``logs(node=...)`` match exactly
or as a ``/``-prefix (a job id returns all its steps' lines). Run ids may be given as a unique
prefix to ``get_run`` and ``request_cancel``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from worldtree.model.records import LogLine, NodeEvent, NodeRecord, RunRecord

#: seconds a claim holds without renewal (the writer renews every second)
LEASE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class AttemptLease:
    """A claimed attempt: pass ``token`` to ``writer`` and ``finish_attempt``."""

    run_id: str
    attempt: int
    token: int
    owner: str  # "pid@host"
    lease_expires_at: datetime


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """An API token as stored: never the token itself, only its hash (looked up, not returned)."""

    id: str
    name: str
    role: str  # viewer | maintainer | admin
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One mutating API call: who (a token id, or ``anonymous``), what, on what, with what result, from where."""

    at: datetime
    actor: str
    role: str | None
    action: str  # "POST /api/v1/runs/{run_id}/cancel"
    target: str | None
    status: int
    client: str | None


class RunWriter(Protocol):
    @property
    def backlog(self) -> int:
        """Records waiting to be written: callers slow their producers down past a high-water mark."""
        ...

    def node_event(self, event: NodeEvent) -> None: ...

    def log(self, line: LogLine) -> None: ...

    def scope_deadlines(self, deadlines: dict[str, datetime]) -> None:
        """Merge ``{scope_id: wall-clock deadline}`` into the attempt's (written with the next batch)."""
        ...

    def flush(self) -> None: ...

    def close(self) -> None:
        """Write what is left and stop; StoreError if the last batch cannot be written. Idempotent."""
        ...


class RunStore(Protocol):
    url: str

    def create_run(self, *, name: str, source: str | None, workdir: str, graph_json: str,
                   options: dict[str, Any], graph_version: int = 1) -> str:
        """A new run (state pending, attempt 0); returns its id (sortable: newest sorts last)."""
        ...

    def start_attempt(self, run_id: str, *, node_ids: list[str], expect_attempt: int | None = None,
                      lease_seconds: float = LEASE_SECONDS) -> AttemptLease:
        """Claim attempt N+1 (compare-and-set, see the module docstring); ConflictError if it cannot."""
        ...

    def writer(self, run_id: str, attempt: int, *, token: int,
               on_commit: Callable[[list[NodeEvent], list[LogLine]], None] | None = None,
               on_cancel: Callable[[str], None] | None = None,
               on_fault: Callable[[BaseException], None] | None = None) -> RunWriter:
        """The attempt's writer; ConflictError if ``token`` no longer holds it."""
        ...

    def finish_attempt(self, run_id: str, attempt: int, state: str, *, token: int) -> None:
        """Record the attempt's and the run's final state (a RunState value); ConflictError if fenced."""
        ...

    def request_cancel(self, run_id: str, reason: str) -> bool:
        """Persist a cancel request; True when the run was pending or live. Idempotent."""
        ...

    def claim_node(self, run_id: str, attempt: int, node: str, owner: str, lease_seconds: float) -> int | None:
        """pending → running for ``owner``; the claim's token, or None when the node is not pending."""
        ...

    def renew_node_lease(self, run_id: str, attempt: int, node: str, token: int, lease_seconds: float) -> bool:
        """Extend a node claim; False when ``token`` no longer holds it."""
        ...

    def expired_node_leases(self, now: datetime) -> list[tuple[str, int, str, int]]:
        """``(run_id, attempt, node, token)`` of running nodes whose lease ended before ``now``."""
        ...

    def claimable_runs(self, limit: int = 20) -> list[tuple[str, int]]:
        """Queued server runs an executor may claim (pending, or their runner died): ``(run_id, attempt)``."""
        ...

    def delete_run(self, run_id: str) -> bool:
        """Delete a finished run and everything it recorded; False when it is not finished."""
        ...

    def requeue_run(self, run_id: str, expect_attempt: int) -> bool:
        """A finished, not succeeded queued run back to ``pending`` (compare-and-set on the attempt)."""
        ...

    def notify_queue(self) -> None:
        """Announce that the queue changed (PostgreSQL NOTIFY); best effort, a no-op on SQLite."""
        ...

    def listen_queue(self, on_signal: Callable[[], None], stop: threading.Event) -> bool:
        """Call ``on_signal`` on every announcement until ``stop``; False when the store cannot (poll)."""
        ...

    def record_audit(self, entry: AuditEntry) -> None: ...

    def audit_entries(self, *, offset: int = 0, limit: int = 100) -> tuple[list[AuditEntry], int]:
        """Newest first, and how many there are."""
        ...

    def page_runs(self, *, offset: int = 0, limit: int = 50, state: str | None = None,
                  pipeline: str | None = None, since: datetime | None = None,
                  until: datetime | None = None, q: str | None = None) -> tuple[list[RunRecord], int]:
        """Newest first, like ``list_runs``, filtered by (computed) state, pipeline name, creation
        time (``since`` inclusive, ``until`` exclusive) and ``q`` (a case-insensitive substring of the
        run's id or name); and how many match."""
        ...

    def create_token(self, *, token_id: str, name: str, role: str, secret_hash: str,
                     expires_at: datetime | None) -> None:
        """Store an API token (its SHA-256, never the token)."""
        ...

    def token_by_hash(self, secret_hash: str) -> TokenRecord | None: ...

    def list_tokens(self) -> list[TokenRecord]: ...

    def revoke_token(self, token_id: str) -> bool:
        """Revoke a token; False when there is no such (unrevoked) token."""
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
