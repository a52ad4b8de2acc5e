"""``GET /api/v1/queue`` and ``GET /api/v1/queue/stats``: translations of :mod:`worldtree.app.queue`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from worldtree.app import queue
from worldtree.server.auth import require

router = APIRouter()


@router.get("/api/v1/queue", tags=["queue"], **require("viewer"))
def queue_view(request: Request) -> dict[str, Any]:
    """Runs running and queued (oldest first, every replica's); each queued one says why it waits
    (``waiting_for``: "max-concurrent 2 reached", "behind run X in concurrency group G", ...)."""
    settings = request.app.state.settings
    return queue.view(request.app.state.runtime.store, max_concurrent=settings.max_concurrent,
                      executors=settings.executors)


@router.get("/api/v1/queue/stats", tags=["queue"], **require("viewer"))
def queue_stats(request: Request) -> dict[str, Any]:
    """Runs per state across every replica (``pending`` = queued), ``max_concurrent`` (the limit:
    ``--max-concurrent``, else this replica's executors), ``current_concurrent`` and ``executors``."""
    settings = request.app.state.settings
    return queue.stats(request.app.state.runtime.store, executors=settings.executors,
                       max_concurrent=settings.max_concurrent)
