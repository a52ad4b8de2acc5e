"""Queue limits, decided when a run is claimed, inside the claim's transaction: every replica obeys them.

Two limits hold a queued run back:

* ``max_concurrent``: at most N queued runs running at once (live attempts, any replica). The
  claiming replica's own ``--max-concurrent`` is the bound it applies: give every replica the same.
* a concurrency group (the pipeline's ``concurrency: {group}``, stored in the run's options as
  ``concurrency_group``): a run waits while an older run of its group is queued or running
  (GitHub Actions' "queue behind"; ``cancel_in_progress`` cancels the older ones at submit time,
  :mod:`worldtree.app.concurrency`).

A run whose cancel was requested while queued is always admitted: its claim ends it at once.

The check and the claim are one transaction. SQLite runs one writer at a time; on PostgreSQL
(READ COMMITTED) two replicas could both count one running run and both claim, so every
admitted claim first takes a transaction-scoped advisory lock: claims commit one at a time.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from worldtree.errors import StoreError, UsageError
from worldtree.model.states import RunState
from worldtree.store import lifecycle
from worldtree.store.api import AttemptLease
from worldtree.store.liveness import is_live
from worldtree.store.rows import utc_value
from worldtree.store.schema import reason, write_transaction
from worldtree.store.tx import SqlaTx, Tx

#: ``pg_advisory_xact_lock`` key of admitted claims ("wtclm" in ASCII).
_PG_CLAIM_LOCK = 0x7774636C6D
#: Option keys a server run carries (written by ``worldtree.app.concurrency``).
GROUP_OPTION = "concurrency_group"
CANCEL_IN_PROGRESS_OPTION = "cancel_in_progress"

_QUEUED_LIKE = f'%"{lifecycle.QUEUED_OPTION}": true%'
_RUNNING = ("SELECT r.id, a.pid, a.hostname, a.lease_expires_at FROM runs r "
            "JOIN attempts a ON a.run_id = r.id AND a.number = r.attempt "
            "WHERE r.state = 'running' AND a.state = 'running' AND r.options_json LIKE :queued")
_RUN = "SELECT options_json, cancel_requested_at FROM runs WHERE id = :run_id"
_GROUP = ("SELECT r.id, r.state, r.created_at, r.options_json, r.cancel_requested_at, a.state, a.pid, a.hostname, "
          "a.lease_expires_at FROM runs r LEFT JOIN attempts a ON a.run_id = r.id AND a.number = r.attempt "
          "WHERE r.state IN ('pending', 'running') AND r.options_json LIKE :group ESCAPE '\\' "
          "ORDER BY r.created_at, r.id")


class Waiting(Exception):
    """The run may not start yet; the message says why (shown by ``GET /api/v1/queue``)."""


def group_pattern(group: str) -> str:
    """A LIKE pattern matching the options JSON of runs in ``group`` (checked exactly afterwards)."""
    encoded = json.dumps(group)
    escaped = encoded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f'%"{GROUP_OPTION}": {escaped}%'


def running_count(tx: Tx, now: datetime, *, besides: str | None = None) -> int:
    """Queued runs whose attempt is live now (any replica), not counting ``besides``."""
    return sum(1 for row in tx.rows(_RUNNING, {"queued": _QUEUED_LIKE})
               if row[0] != besides and is_live(row[1], row[2], utc_value(row[3]), now))


def blocker(tx: Tx, run_id: str, *, max_concurrent: int | None, now: datetime,
            running: int | None = None) -> str | None:
    """Why ``run_id`` may not be claimed now, or None. ``running``: a count already made."""
    found = tx.rows(_RUN, {"run_id": run_id})
    if not found:
        return None  # the claim itself explains a missing run
    options_json, cancel_requested = found[0]
    if cancel_requested is not None:
        return None
    options = json.loads(options_json or "{}")
    group = options.get(GROUP_OPTION)
    if isinstance(group, str) and group:
        for row in tx.rows(_GROUP, {"group": group_pattern(group)}):
            if row[0] == run_id:
                break  # only older runs hold this one back (ordered by creation)
            if json.loads(row[3] or "{}").get(GROUP_OPTION) != group:
                continue
            if row[1] == RunState.PENDING and row[4] is None:
                return f"behind run {row[0]} in concurrency group {group}"
            if row[1] == RunState.RUNNING:  # live, or interrupted and about to be taken over
                return f"behind run {row[0]} in concurrency group {group}"
    if max_concurrent is not None:
        count = running if running is not None else running_count(tx, now, besides=run_id)
        if count >= max_concurrent:
            return f"max-concurrent {max_concurrent} reached"
    return None


def claim(engine: Engine, run_id: str, *, node_ids: list[str], expect_attempt: int | None, lease_seconds: float,
          max_concurrent: int | None) -> tuple[AttemptLease, str | None]:
    """``start_attempt`` if the limits allow it now: Waiting (why) if not, ConflictError if another won.

    Also returns the cancel requested while the run was queued, read in the claim's transaction
    (the claim clears it: read earlier, a cancel made in between would be lost)."""
    now = datetime.now(UTC)
    try:
        with write_transaction(engine) as conn:
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_CLAIM_LOCK})")
            tx = SqlaTx(conn)
            why = blocker(tx, run_id, max_concurrent=max_concurrent, now=now)
            if why is not None:
                raise Waiting(why)
            requested = tx.rows("SELECT cancel_requested_at, cancel_reason FROM runs WHERE id = :run_id",
                                {"run_id": run_id})
            cancel = (requested[0][1] or "cancel requested") if requested and requested[0][0] is not None else None
            return lifecycle.start_attempt(tx, run_id, node_ids, expect_attempt, lease_seconds, now), cancel
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot claim run {run_id}: {reason(exc)}") from exc


def reasons(engine: Engine, run_ids: list[str], *, max_concurrent: int | None) -> dict[str, str | None]:
    """For the queue view: why each queued run waits (None: an executor may take it now)."""
    now = datetime.now(UTC)
    try:
        with engine.connect() as conn:
            tx = SqlaTx(conn)
            running = running_count(tx, now)
            return {run_id: blocker(tx, run_id, max_concurrent=max_concurrent, now=now, running=running)
                    for run_id in run_ids}
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the queue: {reason(exc)}") from exc


def engine_of(store: Any) -> Engine:
    """The SQLAlchemy engine of a run store (either implementation has one as ``_engine``)."""
    engine = getattr(store, "_engine", None)
    if engine is None:
        raise UsageError(f"the store {type(store).__name__} has no SQL engine")
    return engine


def group_runs(engine: Engine, group: str) -> list[tuple[str, str, bool]]:
    """Queued and running runs of ``group``, oldest first: ``(run_id, state, cancel requested)``."""
    try:
        with engine.connect() as conn:
            rows = SqlaTx(conn).rows(_GROUP, {"group": group_pattern(group)})
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read concurrency group {group!r}: {reason(exc)}") from exc
    return [(str(r[0]), str(r[1]), r[4] is not None) for r in rows
            if json.loads(r[3] or "{}").get(GROUP_OPTION) == group]
