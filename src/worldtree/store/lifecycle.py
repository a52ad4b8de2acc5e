"""Claiming, finishing and cancelling attempts, and node leases: written once, for both drivers.

Each function runs inside one write transaction (a :class:`~worldtree.store.tx.Tx` the store
opens: ``BEGIN IMMEDIATE`` on SQLite, READ COMMITTED on PostgreSQL). The claims are
compare-and-set :mod:`transitions <worldtree.store.transitions>`: on PostgreSQL two racing
claims both pass the liveness check, then the second ``UPDATE … WHERE attempt = <seen>`` waits
for the first to commit, re-reads the row, matches nothing and becomes a ConflictError.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

from worldtree.errors import ConflictError, StoreError, UsageError
from worldtree.model.states import NodeState, RunState
from worldtree.store import transitions as t
from worldtree.store.api import AttemptLease, AuditEntry, TokenRecord
from worldtree.store.ids import new_run_id
from worldtree.store.liveness import HOSTNAME, is_live, owner_of
from worldtree.store.rows import utc_param, utc_value
from worldtree.store.tx import Tx

_RUN_AND_ATTEMPT = ("SELECT r.id, r.state, r.attempt, a.state, a.pid, a.hostname, a.lease_expires_at "
                    "FROM runs r LEFT JOIN attempts a ON a.run_id = r.id AND a.number = r.attempt "
                    "WHERE r.id = :run_id")
_INSERT_ATTEMPT = ("INSERT INTO attempts (run_id, number, state, started_at, pid, hostname, heartbeat_at, owner, "
                   "token, lease_expires_at) VALUES (:run_id, :number, 'running', :now, :pid, :hostname, :now, "
                   ":owner, :token, :expires)")
_INSERT_PENDING = ("INSERT INTO node_states (run_id, attempt, node, state, try_number) "
                   "VALUES (:run_id, :attempt, :node, 'pending', 1)")


def resolve(tx: Tx, run_id: str) -> str | None:
    """The full id of ``run_id`` or of the one run it is a prefix of; UsageError when ambiguous."""
    if not run_id:
        return None
    if tx.rows("SELECT id FROM runs WHERE id = :id", {"id": run_id}):
        return run_id
    pattern = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    found = [row[0] for row in tx.rows("SELECT id FROM runs WHERE id LIKE :p ESCAPE '\\' ORDER BY id LIMIT 6",
                                       {"p": pattern})]
    if len(found) > 1:
        more = ", …" if len(found) > 5 else ""
        raise UsageError(f"run id prefix {run_id!r} is ambiguous: {', '.join(found[:5])}{more}")
    return found[0] if found else None


def _live(row: tuple[Any, ...], now: datetime) -> bool:
    """Whether the run's current attempt (``_RUN_AND_ATTEMPT`` row) is running and held."""
    return row[3] == RunState.RUNNING and is_live(row[4], row[5], utc_value(row[6]), now)


def start_attempt(tx: Tx, run_id: str, node_ids: list[str], expect_attempt: int | None,
                  lease_seconds: float, now: datetime) -> AttemptLease:
    found = tx.rows(_RUN_AND_ATTEMPT, {"run_id": run_id})
    if not found:
        raise UsageError(f"no run {run_id!r} in the store")
    row = found[0]
    current = int(row[2])
    if expect_attempt is not None and current != expect_attempt:
        raise ConflictError(f"run {run_id} was retried at the same time by another process (attempt {current}); "
                            f"see `worldtree runs {run_id}`")
    if _live(row, now):
        raise ConflictError(f"run {run_id} is still running (pid {row[4]} on {row[5]}); "
                            f"wait for it or `worldtree cancel {run_id}`")
    number = current + 1
    stamp, expires = utc_param(now, tx.as_text), now + timedelta(seconds=lease_seconds)
    fenced = tx.rows(t.RUN_CLAIM.sql, {"run_id": run_id, "attempt": number, "now": stamp, "expect": current})
    if not fenced:
        raise ConflictError(f"run {run_id} was retried at the same time by another process (attempt {number}); "
                            f"see `worldtree runs {run_id}`")
    token, owner = int(fenced[0][0]), owner_of(os.getpid())
    # An older attempt still marked running has lost its lease or its process: this one replaces it.
    t.apply(tx, t.ATTEMPT_INTERRUPT, {"run_id": run_id, "number": number, "now": stamp})
    tx.run(_INSERT_ATTEMPT, {"run_id": run_id, "number": number, "now": stamp, "pid": os.getpid(),
                             "hostname": HOSTNAME, "owner": owner, "token": token,
                             "expires": utc_param(expires, tx.as_text)})
    tx.run_many(_INSERT_PENDING, [{"run_id": run_id, "attempt": number, "node": node} for node in node_ids])
    return AttemptLease(run_id, number, token, owner, expires)


def finish_attempt(tx: Tx, run_id: str, attempt: int, state: str, token: int, now: datetime) -> None:
    final = str(RunState(state))  # ValueError for a state that is not a RunState
    stamp = utc_param(now, tx.as_text)
    # runs before attempts, as every writer locks them: no deadlock on PostgreSQL
    t.apply(tx, t.RUN_FINISH, {"run_id": run_id, "attempt": attempt, "token": token, "state": final, "now": stamp})
    if t.apply(tx, t.ATTEMPT_FINISH, {"run_id": run_id, "number": attempt, "token": token, "state": final,
                                      "now": stamp}):
        return
    held = tx.rows("SELECT state, token FROM attempts WHERE run_id = :run_id AND number = :number",
                   {"run_id": run_id, "number": attempt})
    if not held:
        raise UsageError(f"run {run_id!r} has no attempt {attempt}")
    raise ConflictError(f"attempt {attempt} of run {run_id} cannot end as {final}: it is {held[0][0]} "
                        f"(token {held[0][1]}, this process holds {token}); another process took the run over, "
                        f"see `worldtree runs {run_id}`")


def request_cancel(tx: Tx, run_id: str, reason: str, now: datetime) -> bool:
    """Persist a cancel for the run's current attempt; False when nothing is pending or running."""
    full = resolve(tx, run_id)
    if full is None:
        raise UsageError(f"no run {run_id!r} in the store")
    # An executor may claim the run (a new attempt) between the read and the compare-and-set; on
    # PostgreSQL (READ COMMITTED) each statement sees what committed before it, so read again
    # rather than refuse a cancel of a run that is now running. SQLite holds the write lock here.
    for _ in range(3):
        row = tx.rows(_RUN_AND_ATTEMPT, {"run_id": full})[0]
        if not (row[1] == RunState.PENDING or (row[1] == RunState.RUNNING and _live(row, now))):
            return False
        if t.apply(tx, t.RUN_CANCEL, {"run_id": full, "attempt": row[2], "reason": reason,
                                      "now": utc_param(now, tx.as_text)}) == 1:
            return True
    return False


def renew_attempt(tx: Tx, run_id: str, attempt: int, token: int, lease_seconds: float,
                  now: datetime) -> tuple[bool, str | None]:
    """The writer's heartbeat: extend the lease (False: fenced) and read the cancel request."""
    held = t.apply(tx, t.ATTEMPT_RENEW, {
        "run_id": run_id, "number": attempt, "token": token, "now": utc_param(now, tx.as_text),
        "expires": utc_param(now + timedelta(seconds=lease_seconds), tx.as_text)})
    cancel = tx.rows("SELECT cancel_requested_at, cancel_reason FROM runs WHERE id = :run_id", {"run_id": run_id})
    requested = bool(cancel) and cancel[0][0] is not None
    return held == 1, (cancel[0][1] or "cancel requested") if requested else None


def merge_scope_deadlines(tx: Tx, run_id: str, attempt: int, deadlines: dict[str, datetime]) -> None:
    key = {"run_id": run_id, "number": attempt}
    found = tx.rows("SELECT scope_deadlines_json FROM attempts WHERE run_id = :run_id AND number = :number", key)
    merged = json.loads(found[0][0]) if found and found[0][0] else {}
    merged.update({scope: at.isoformat() for scope, at in deadlines.items()})
    tx.run("UPDATE attempts SET scope_deadlines_json = :value WHERE run_id = :run_id AND number = :number",
           {**key, "value": json.dumps(merged, sort_keys=True)})


def claim_node(tx: Tx, run_id: str, attempt: int, node: str, owner: str, lease_seconds: float,
               now: datetime) -> int | None:
    got = tx.rows(t.NODE_CLAIM.sql, {
        "run_id": run_id, "attempt": attempt, "node": node, "owner": owner, "now": utc_param(now, tx.as_text),
        "expires": utc_param(now + timedelta(seconds=lease_seconds), tx.as_text)})
    return int(got[0][0]) if got else None


def renew_node_lease(tx: Tx, run_id: str, attempt: int, node: str, token: int, lease_seconds: float,
                     now: datetime) -> bool:
    return t.apply(tx, t.NODE_RENEW, {
        "run_id": run_id, "attempt": attempt, "node": node, "token": token,
        "expires": utc_param(now + timedelta(seconds=lease_seconds), tx.as_text)}) == 1


def expired_node_leases(tx: Tx, now: datetime) -> list[tuple[str, int, str, int]]:
    rows = tx.rows("SELECT run_id, attempt, node, token FROM node_states WHERE state = :state AND "
                   "lease_expires_at < :now ORDER BY lease_expires_at",
                   {"state": str(NodeState.RUNNING), "now": utc_param(now, tx.as_text)})
    return [(str(r[0]), int(r[1]), str(r[2]), int(r[3])) for r in rows]


def attempt_lease(tx: Tx, run_id: str, attempt: int, token: int) -> float:
    """The lease length ``attempt`` was claimed with; UsageError/ConflictError unless ``token`` holds it."""
    found = tx.rows("SELECT state, token, heartbeat_at, lease_expires_at FROM attempts "
                    "WHERE run_id = :run_id AND number = :number", {"run_id": run_id, "number": attempt})
    if not found:
        raise UsageError(f"run {run_id!r} has no attempt {attempt}")
    state, held, beat, expires = found[0]
    if held != token or state != RunState.RUNNING:
        raise ConflictError(f"attempt {attempt} of run {run_id} is {state} with token {held}, not {token}: "
                            f"another process took the run over; see `worldtree runs {run_id}`")
    beat_at, expires_at = utc_value(beat), utc_value(expires)
    return (expires_at - beat_at).total_seconds() if beat_at and expires_at else 0.0


_INSERT_RUN = ("INSERT INTO runs (id, name, source, workdir, state, attempt, created_at, graph_json, options_json, "
               "graph_version) VALUES (:id, :name, :source, :workdir, 'pending', 0, :now, :graph_json, :options_json, "
               ":graph_version)")


def create_run(transaction: Callable[[], AbstractContextManager[Tx]], duplicate: type[Exception], *, name: str,
               source: str | None, workdir: str, graph_json: str, options: dict[str, Any], graph_version: int,
               now: datetime) -> str:
    """Insert a pending run; a clash of ids (another process, same millisecond) draws a new one."""
    for tries_left in range(4, -1, -1):
        run_id = new_run_id(now)
        try:
            with transaction() as tx:
                tx.run(_INSERT_RUN, {"id": run_id, "name": name, "source": source, "workdir": workdir,
                                     "now": utc_param(now, tx.as_text), "graph_json": graph_json,
                                     "options_json": json.dumps(options), "graph_version": graph_version})
            return run_id
        except duplicate:
            if not tries_left:
                raise StoreError("cannot create a run: five run id collisions in a row") from None
    raise AssertionError("unreachable")


# -- the server's durable queue -----------------------------------------------------------------
#: The option a server sets on the runs it queues: only those are claimed by its executors (a run a
#: ``worldtree run`` created is between ``create_run`` and its own claim, never the queue's).
QUEUED_OPTION = "queued"
_QUEUE_ROWS = ("SELECT r.id, r.state, r.attempt, a.state, a.pid, a.hostname, a.lease_expires_at, r.options_json "
               "FROM runs r LEFT JOIN attempts a ON a.run_id = r.id AND a.number = r.attempt "
               "WHERE r.state IN ('pending', 'running') AND r.options_json LIKE :queued "
               "ORDER BY r.created_at, r.id LIMIT :limit")
_FINISHED = frozenset(str(s) for s in (RunState.FAILED, RunState.CANCELLED, RunState.TIMED_OUT, RunState.ERROR))
#: A retry through the server: the run goes back to the queue, compare-and-set on the attempt seen.
RUN_REQUEUE = t.Transition(
    "requeue", "runs", target=str(RunState.PENDING),
    sets=("finished_at = NULL", "cancel_requested_at = NULL", "cancel_reason = NULL"),
    where=("id = :run_id", "attempt = :expect"), sources=_FINISHED)


def claimable_runs(tx: Tx, now: datetime, limit: int) -> list[tuple[str, int]]:
    """Queued runs an executor may claim, oldest first, as ``(run_id, attempt seen)``: pending ones,
    and running ones whose attempt is no longer live (its runner was killed: taken over)."""
    found: list[tuple[str, int]] = []
    for row in tx.rows(_QUEUE_ROWS, {"queued": f'%"{QUEUED_OPTION}": true%', "limit": limit}):
        if not json.loads(row[7] or "{}").get(QUEUED_OPTION):
            continue
        if row[1] == RunState.PENDING or not _live(row, now):
            found.append((str(row[0]), int(row[2])))
    return found


def delete_run(tx: Tx, run_id: str) -> bool:
    """Delete a finished run with its attempts, nodes and lines; False if it is not finished (or gone)."""
    finished = [*_FINISHED, str(RunState.SUCCEEDED)]
    marks = ", ".join(f"'{state}'" for state in sorted(finished))
    # children first: correct whether or not the connection enforces ON DELETE CASCADE
    if not tx.rows(f"SELECT id FROM runs WHERE id = :run_id AND state IN ({marks})", {"run_id": run_id}):
        return False
    for table in ("logs", "node_states", "attempts"):
        tx.run(f"DELETE FROM {table} WHERE run_id = :run_id", {"run_id": run_id})
    return tx.run(f"DELETE FROM runs WHERE id = :run_id AND state IN ({marks})", {"run_id": run_id}) == 1


def requeue_run(tx: Tx, run_id: str, expect_attempt: int) -> bool:
    """Put a finished (not succeeded) queued run back in the queue; False if it moved on meanwhile."""
    return t.apply(tx, RUN_REQUEUE, {"run_id": run_id, "expect": expect_attempt}) == 1


# -- API tokens -----------------------------------------------------------------------------------
_TOKEN_COLUMNS = "id, name, role, created_at, expires_at, revoked_at"


def create_token(tx: Tx, *, token_id: str, name: str, role: str, secret_hash: str, expires_at: datetime | None,
                 now: datetime) -> None:
    tx.run("INSERT INTO api_tokens (id, name, role, secret_hash, created_at, expires_at) "
           "VALUES (:id, :name, :role, :hash, :now, :expires)",
           {"id": token_id, "name": name, "role": role, "hash": secret_hash, "now": utc_param(now, tx.as_text),
            "expires": utc_param(expires_at, tx.as_text)})


def _token(row: tuple[Any, ...]) -> TokenRecord:
    created = utc_value(row[3])
    assert created is not None
    return TokenRecord(str(row[0]), str(row[1]), str(row[2]), created, utc_value(row[4]), utc_value(row[5]))


def token_by_hash(tx: Tx, secret_hash: str) -> TokenRecord | None:
    rows = tx.rows(f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE secret_hash = :hash", {"hash": secret_hash})
    return _token(rows[0]) if rows else None


def list_tokens(tx: Tx) -> list[TokenRecord]:
    return [_token(row) for row in tx.rows(f"SELECT {_TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, id", {})]


def revoke_token(tx: Tx, token_id: str, now: datetime) -> bool:
    return tx.run("UPDATE api_tokens SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL",
                  {"id": token_id, "now": utc_param(now, tx.as_text)}) == 1


# -- audit log --------------------------------------------------------------------------------------
def record_audit(tx: Tx, entry: AuditEntry) -> None:
    tx.run("INSERT INTO audit_log (at, actor, role, action, target, status, client) "
           "VALUES (:at, :actor, :role, :action, :target, :status, :client)",
           {"at": utc_param(entry.at, tx.as_text), "actor": entry.actor, "role": entry.role, "action": entry.action,
            "target": entry.target, "status": entry.status, "client": entry.client})


def audit_entries(tx: Tx, offset: int, limit: int) -> tuple[list[AuditEntry], int]:
    total = int(tx.rows("SELECT count(*) FROM audit_log", {})[0][0])
    rows = tx.rows("SELECT at, actor, role, action, target, status, client FROM audit_log "
                   "ORDER BY id DESC LIMIT :limit OFFSET :offset", {"limit": limit, "offset": offset})
    entries = []
    for row in rows:
        at = utc_value(row[0])
        assert at is not None
        entries.append(AuditEntry(at, str(row[1]), row[2], str(row[3]), row[4], int(row[5]), row[6]))
    return entries, total
