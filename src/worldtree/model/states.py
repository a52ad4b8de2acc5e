"""Node and run states, kept distinct and named (Argo's NodePhase, Prefect's FAILED vs CRASHED).

* ``pending``   not started yet (its needs are not done, or no slot is free)
* ``running``   an executor holds it; also while it waits to retry (``retry_at`` is set)
* ``failed``    the node ran and its command exited non-zero (or worldtree could not run it)
* ``timed_out`` a timeout at one of the four levels stopped it
* ``cancelled`` the user (Ctrl-C, SIGTERM) or fail-fast stopped it, or it never started because of that
* ``skipped``   its condition was false, its precheck said the work is already done,
                or an upstream node did not succeed (``reason`` tells which)
* ``reused``    ``worldtree retry`` kept the success of an earlier attempt

A run ends ``succeeded``, ``failed``, ``timed_out`` or ``cancelled`` like its nodes; ``error``
when worldtree itself broke (the store stopped taking writes, a listener raised); readers
report a ``running`` run whose runner is gone (lease expired, pid dead) as ``interrupted``.
Both are retryable.
"""

from __future__ import annotations

from enum import StrEnum


class NodeState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    TIMED_OUT = "timed_out"
    REUSED = "reused"


class RunState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    INTERRUPTED = "interrupted"  # the process running it died (SIGKILL, power loss); retryable
    ERROR = "error"  # worldtree itself broke (store unwritable, internal error); retryable


TERMINAL: frozenset[NodeState] = frozenset(
    {NodeState.SUCCEEDED, NodeState.FAILED, NodeState.CANCELLED, NodeState.SKIPPED,
     NodeState.TIMED_OUT, NodeState.REUSED}
)
#: States whose work is done and need not run again on retry.
DONE_OK: frozenset[NodeState] = frozenset({NodeState.SUCCEEDED, NodeState.REUSED})
#: Finished without success: a retry runs these again.
UNSUCCESSFUL: frozenset[NodeState] = frozenset({NodeState.FAILED, NodeState.CANCELLED, NodeState.TIMED_OUT})

RUN_TERMINAL: frozenset[RunState] = frozenset(
    {RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED, RunState.TIMED_OUT, RunState.INTERRUPTED,
     RunState.ERROR}
)


class SkipReason(StrEnum):
    CONDITION = "condition"  # `when`/`if` said no
    PRECHECK = "precheck"  # precheck exited 0: already done
    UPSTREAM = "upstream"  # a dependency did not succeed
