"""Every run, attempt and node state change, as data: one place, rendered to SQL for both drivers.

A :class:`Transition` names its table, the target state, the states it may leave (``sources``),
the columns it sets and the row it addresses. :meth:`Transition.sql` renders
``UPDATE … SET … WHERE <key> AND state IN (<sources>)``; the caller checks the row count (0 = the
compare-and-set lost) through :func:`apply`, which raises :class:`ConflictError`. Both the
SQLAlchemy store and the direct ``sqlite3`` path run these same statements (:mod:`.tx`).

Node rules: to ``running`` and to a terminal state from {pending, running}; to ``reused`` only
from pending; a rollback annotation (same state, reason ``rolled_back``/``rollback_failed``) only
from {succeeded, reused}. Terminal states never change otherwise. Several events of one node in
one batch collapse (:func:`collapse`): the first event's sources, the last event's values.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from worldtree.errors import ConflictError
from worldtree.model.records import NodeEvent
from worldtree.model.states import TERMINAL, NodeState, RunState
from worldtree.store.rows import clean, utc_param
from worldtree.store.tx import Params, Tx


@dataclass(frozen=True)
class Transition:
    name: str
    table: str
    #: ``col`` (set from ``:col``) or ``col = <expression>``
    sets: tuple[str, ...]
    #: ``col`` (equal to ``:col``) or a condition of its own
    where: tuple[str, ...]
    #: states the row may be in; None: any
    sources: frozenset[str] | None = None
    #: the state written, as a literal; None: ``state`` comes from ``sets`` (or is kept)
    target: str | None = None
    returning: str = ""

    @cached_property
    def sql(self) -> str:
        sets = [f"state = '{self.target}'"] if self.target is not None else []
        sets += [s if "=" in s else f"{s} = :{s}" for s in self.sets]
        where = [w if " " in w else f"{w} = :{w}" for w in self.where]
        if self.sources is not None:
            where.append("state IN (" + ", ".join(f"'{s}'" for s in sorted(self.sources)) + ")")
        text = f"UPDATE {self.table} SET {', '.join(sets)} WHERE {' AND '.join(where)}"
        return f"{text} RETURNING {self.returning}" if self.returning else text


def apply(tx: Tx, transition: Transition, params: Params, conflict: str | None = None) -> int:
    """Run ``transition``; with ``conflict``, a row count of 0 raises ConflictError(conflict)."""
    changed = tx.run(transition.sql, params)
    if changed == 0 and conflict is not None:
        raise ConflictError(conflict)
    return changed


LIVE = frozenset({str(RunState.PENDING), str(RunState.RUNNING)})
_RUNNING = frozenset({str(RunState.RUNNING)})

# -- runs ---------------------------------------------------------------------------------------
#: A new attempt claims the run: compare-and-set on the attempt number seen. A cancel request
#: belongs to the attempt it was made for; one made before the first attempt still applies.
RUN_CLAIM = Transition(
    "claim", "runs", target=str(RunState.RUNNING),
    sets=("attempt = :attempt", "started_at = :now", "finished_at = NULL", "fence = fence + 1",
          "cancel_requested_at = CASE WHEN attempt = 0 THEN cancel_requested_at END",
          "cancel_reason = CASE WHEN attempt = 0 THEN cancel_reason END"),
    where=("id = :run_id", "attempt = :expect"), returning="fence")
RUN_FINISH = Transition("finish", "runs", sets=("state", "finished_at = :now"),
                        where=("id = :run_id", "attempt = :attempt", "fence = :token"), sources=_RUNNING)
RUN_CANCEL = Transition(
    "cancel", "runs",
    sets=("cancel_requested_at = coalesce(cancel_requested_at, :now)",
          "cancel_reason = coalesce(cancel_reason, :reason)"),
    where=("id = :run_id", "attempt = :attempt"), sources=LIVE)
RUN_LOG_SEQ = Transition("log order", "runs", sets=("log_seq = log_seq + :n",), where=("id = :run_id",),
                         returning="log_seq")

# -- attempts -----------------------------------------------------------------------------------
ATTEMPT_INTERRUPT = Transition("interrupt", "attempts", target=str(RunState.INTERRUPTED),
                               sets=("finished_at = :now",), where=("run_id = :run_id", "number < :number"),
                               sources=_RUNNING)
ATTEMPT_FINISH = Transition("finish", "attempts", sets=("state", "finished_at = :now", "heartbeat_at = :now"),
                            where=("run_id = :run_id", "number = :number", "token = :token"), sources=_RUNNING)
ATTEMPT_RENEW = Transition("renew", "attempts", sets=("heartbeat_at = :now", "lease_expires_at = :expires"),
                           where=("run_id = :run_id", "number = :number", "token = :token"), sources=_RUNNING)

# -- node states --------------------------------------------------------------------------------
_NODE_KEY = ("run_id = :run_id", "attempt = :attempt", "node = :node")
_NODE_VALUES = ("state", "started_at = coalesce(:started_at, started_at)", "finished_at", "exit_code", "error",
                "reason", "try_number", "deadline_at", "retry_at")
_PENDING = frozenset({str(NodeState.PENDING)})
_ACTIVE = frozenset({str(NodeState.PENDING), str(NodeState.RUNNING)})
NODE_ADVANCE = Transition("advance", "node_states", sets=_NODE_VALUES, where=_NODE_KEY, sources=_ACTIVE)
NODE_REUSE = Transition("reuse", "node_states", sets=_NODE_VALUES, where=_NODE_KEY, sources=_PENDING)
NODE_ANNOTATE = Transition("annotate rollback", "node_states", sets=_NODE_VALUES, where=_NODE_KEY,
                           sources=frozenset({str(NodeState.SUCCEEDED), str(NodeState.REUSED)}))
NODE_CLAIM = Transition(
    "claim", "node_states", target=str(NodeState.RUNNING),
    sets=("owner", "lease_expires_at = :expires", "token = coalesce(token, 0) + 1",
          "started_at = coalesce(started_at, :now)"),
    where=_NODE_KEY, sources=_PENDING, returning="token")
NODE_RENEW = Transition("renew", "node_states", sets=("lease_expires_at = :expires",),
                        where=(*_NODE_KEY, "token = :token"), sources=frozenset({str(NodeState.RUNNING)}))

ROLLBACK_REASONS = frozenset({"rolled_back", "rollback_failed"})
TERMINAL_VALUES = frozenset(str(state) for state in TERMINAL)


def node_transition(event: NodeEvent) -> Transition:
    """The transition ``event`` asks for."""
    if event.reason in ROLLBACK_REASONS and event.state in (NodeState.SUCCEEDED, NodeState.REUSED):
        return NODE_ANNOTATE
    if event.state == NodeState.REUSED:
        return NODE_REUSE
    return NODE_ADVANCE


def collapse(run_id: str, attempt: int, events: list[NodeEvent],
             as_text: bool) -> list[tuple[Transition, dict[str, Any]]]:
    """One update per node: the first event's transition (its sources), the last event's values.

    Without explicit times, ``running`` takes ``ts`` as its start and a terminal state as its end;
    an earlier event's start is kept when a later one has none.
    """
    out: dict[str, tuple[Transition, dict[str, Any]]] = {}
    for ev in events:
        started = ev.started_at or (ev.ts if ev.state == NodeState.RUNNING else None)
        finished = ev.finished_at or (ev.ts if ev.state in TERMINAL_VALUES else None)
        earlier = out.get(ev.node)
        params = {
            "run_id": run_id, "attempt": attempt, "node": ev.node, "state": str(ev.state),
            "started_at": utc_param(started, as_text) if started is not None else (
                earlier[1]["started_at"] if earlier else None),
            "finished_at": utc_param(finished, as_text), "exit_code": ev.exit_code,
            "error": clean(ev.error) if ev.error else ev.error, "reason": ev.reason, "try_number": ev.try_number,
            "deadline_at": utc_param(ev.deadline_at, as_text), "retry_at": utc_param(ev.retry_at, as_text)}
        out[ev.node] = (earlier[0] if earlier else node_transition(ev), params)
    return list(out.values())
