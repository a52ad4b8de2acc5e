"""The one timeout resolver: which limit stops a node, and when (seed 003 §12, four levels).

A node is bounded by its own ``timeout`` (per try: every retry gets the full step timeout, as
GitLab and Argo apply it) and by the timeouts of the scopes it sits in (job, stage, pipeline),
which run from the moment the first node of that scope started and cover everything inside it:
all steps, all retries and the backoff sleeps between them. The earliest deadline wins; on a
tie the outer level is named, since that is the limit the user set for the larger thing.

``worldtree plan`` prints :func:`static_limit` (what applies to a node on its own); the state
machine calls :func:`deadline` with the wall-clock times it keeps in the store.
"""

from __future__ import annotations

from dataclasses import dataclass

from worldtree.model.durations import format_seconds
from worldtree.model.graph import ExecutionGraph, Node

#: When no level sets a limit (seed 003: 24 hours).
DEFAULT_TIMEOUT = 86400.0
#: Rollback and ``post`` commands get this long when their node declares no timeout of its own.
CLEANUP_TIMEOUT = 600.0
_ORDER = {"pipeline": 0, "stage": 1, "job": 2, "step": 3}


@dataclass(frozen=True, slots=True)
class Limit:
    """A deadline (wall-clock seconds since the epoch) and the level that set it."""

    at: float
    level: str
    seconds: float

    def message(self) -> str:
        return f"{self.level} timeout after {format_seconds(self.seconds)} seconds"


def _earlier(best: Limit | None, candidate: Limit) -> Limit:
    if best is None or candidate.at < best.at:
        return candidate
    if candidate.at == best.at and _ORDER[candidate.level] < _ORDER[best.level]:
        return candidate
    return best


def deadline(graph: ExecutionGraph, node: Node, try_started: float,
             scope_started: dict[str, float]) -> Limit:
    """The limit that stops this try of ``node`` first.

    ``scope_started`` maps scope ids to the wall-clock time their first node started; a scope not
    in it has not started (it cannot be the earliest: the caller records it before asking).
    """
    best: Limit | None = None
    for scope_id in node.scopes:
        scope = graph.scopes.get(scope_id)
        started = scope_started.get(scope_id)
        if scope is not None and scope.timeout is not None and started is not None:
            best = _earlier(best, Limit(started + scope.timeout, scope.kind, scope.timeout))
    if node.timeout is not None:
        best = _earlier(best, Limit(try_started + node.timeout, "step", node.timeout))
    return best if best is not None else Limit(try_started + DEFAULT_TIMEOUT, "pipeline", DEFAULT_TIMEOUT)


def cleanup_deadline(node: Node, now: float) -> Limit:
    """Rollback and post-cancel cleanup: the node's own timeout, or :data:`CLEANUP_TIMEOUT`."""
    seconds = node.timeout or CLEANUP_TIMEOUT
    return Limit(now + seconds, "step" if node.timeout else "cleanup", seconds)


def expired_scope(graph: ExecutionGraph, node: Node, scope_started: dict[str, float], now: float) -> Limit | None:
    """The outermost scope of ``node`` whose deadline has passed, if any."""
    for scope_id in node.scopes:
        scope = graph.scopes.get(scope_id)
        started = scope_started.get(scope_id)
        if scope is not None and scope.timeout is not None and started is not None \
                and now >= started + scope.timeout:
            return Limit(started + scope.timeout, scope.kind, scope.timeout)
    return None


def static_limit(graph: ExecutionGraph, node: Node) -> Limit:
    """The tightest limit that applies to ``node`` alone, as if its scopes started with it (``plan``).

    ``at`` is relative (seconds from the node's start): a job of 60 s stops a step of 600 s at 60 s.
    """
    return deadline(graph, node, 0.0, {scope_id: 0.0 for scope_id in node.scopes})
