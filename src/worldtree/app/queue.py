"""The queue as users see it: ``GET /api/v1/queue`` (what waits, and why) and ``/queue/stats``.

Both read the store, so every replica answers the same. The reasons come from the very check a
claim makes (:func:`worldtree.store.admission.blocker`): "max-concurrent 2 reached", "behind run X
in concurrency group G"; a queued run nothing holds back waits for a free executor.
"""

from __future__ import annotations

from typing import Any

from worldtree.app import service
from worldtree.model.states import RunState
from worldtree.store import admission
from worldtree.store.api import RunStore
from worldtree.store.lifecycle import QUEUED_OPTION

#: Runs of each kind (running, waiting) the queue view lists.
MAX_LISTED = 200
FREE_EXECUTOR = "waiting for a free executor"
TAKEOVER = "its executor stopped answering; another executor takes it over when its lease ends"


def effective_limit(max_concurrent: int | None, executors: int) -> int:
    """What bounds the runs running at once: ``--max-concurrent``, else this replica's executors."""
    return max_concurrent if max_concurrent is not None else executors


def stats(store: RunStore, *, executors: int, max_concurrent: int | None) -> dict[str, Any]:
    """Runs per state across every replica (``pending`` = queued), the limit, and how many run now."""
    counts = {state: store.page_runs(limit=1, state=state)[1] for state in service.RUN_STATES}
    return {**counts, "executors": executors, "max_concurrent": effective_limit(max_concurrent, executors),
            "current_concurrent": counts[str(RunState.RUNNING)]}


def _oldest(store: RunStore, state: str) -> list[Any]:
    """Up to MAX_LISTED runs in ``state``, oldest first (the store pages newest first)."""
    _, total = store.page_runs(limit=1, state=state)
    if not total:
        return []
    records, _ = store.page_runs(offset=max(0, total - MAX_LISTED), limit=MAX_LISTED, state=state)
    return [r for r in reversed(records) if r.options.get(QUEUED_OPTION)]


def view(store: RunStore, *, max_concurrent: int | None, executors: int) -> dict[str, Any]:
    """``{"running": [...], "queued": [...]}``, oldest first; each queued run with ``waiting_for``."""
    running = [_item(r) for r in _oldest(store, str(RunState.RUNNING))]
    queued_records = _oldest(store, str(RunState.PENDING))
    interrupted = [_item(r, waiting_for=TAKEOVER) for r in _oldest(store, "interrupted")]
    why = admission.reasons(admission.engine_of(store), [r.run_id for r in queued_records],
                            max_concurrent=max_concurrent)
    queued = []
    for position, record in enumerate(queued_records, start=1):
        reason = why.get(record.run_id) or FREE_EXECUTOR
        if record.cancel_reason:
            reason = f"cancel requested ({record.cancel_reason}); ends when an executor picks it up"
        queued.append({**_item(record, waiting_for=reason), "position": position})
    return {"running": running, "queued": [*interrupted, *queued],
            "max_concurrent": effective_limit(max_concurrent, executors)}


def _item(record: Any, waiting_for: str | None = None) -> dict[str, Any]:
    view = service._summary(record)
    view["concurrency_group"] = record.options.get(admission.GROUP_OPTION)
    if waiting_for is not None:
        view["waiting_for"] = waiting_for
    return view
