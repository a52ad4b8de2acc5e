"""Live log streams as Server-Sent Events, read from the store (so any replica serves any run).

Each event is ``id: <log seq>`` and ``data: {"node", "stream", "line", "ts"}``; the store assigns
``seq`` in commit order, so a follower that reconnects with ``Last-Event-ID: N`` gets every line
after N exactly once. Lines reach followers about one writer batch (~100 ms) plus one poll after
the step printed them, while the step still runs. When the run has finished and every line was
sent, a last ``event: end`` carries the run's state. A slow follower only delays itself: the
executor writes to the store, never to a follower.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
from anyio import to_thread

from worldtree.app import service
from worldtree.model.records import LogLine
from worldtree.store.api import RunStore

#: How often an idle follower looks for new lines.
POLL_SECONDS = 0.2
#: Lines read per query.
BATCH = 1000


@dataclass(frozen=True)
class Ended:
    """The last item of :func:`follow_lines`: the run ended (``state``) and every line was sent."""

    state: str


async def follow_lines(store: RunStore, run_id: str, *, node: str | None,
                       after: int) -> AsyncIterator[LogLine | Ended]:
    """``run_id``'s lines after seq ``after`` as they are committed, then :class:`Ended`.

    ``run_id`` is the full id (:func:`service.resolve`). Shared by SSE, the WebSocket twins and
    seed 003's protocol (:mod:`worldtree.server.ws`)."""
    last, ended = after, None
    while True:
        lines = await to_thread.run_sync(_read, store, run_id, node, last)
        for line in lines:
            last = line.seq
            yield line
        if len(lines) == BATCH:
            continue
        if ended is not None:  # the run had ended before this last read: nothing can follow
            yield Ended(ended)
            return
        state = await to_thread.run_sync(service.run_state, store, run_id)
        if service.is_final(state):
            ended = state  # read once more: lines committed between the read above and the state
            continue
        await anyio.sleep(POLL_SECONDS)


async def log_events(store: RunStore, run_id: str, *, node: str | None, after: int) -> AsyncIterator[dict[str, Any]]:
    """SSE events for ``run_id``'s lines after seq ``after``, until the run ends and all are sent."""
    async for item in follow_lines(store, run_id, node=node, after=after):
        if isinstance(item, Ended):
            yield {"event": "end", "data": json.dumps({"state": item.state})}
            return
        yield {"id": str(item.seq), "data": json.dumps(
            {"node": item.node, "stream": item.stream, "line": item.line, "ts": item.ts.isoformat()})}


def _read(store: RunStore, run_id: str, node: str | None, after: int) -> list[LogLine]:
    return service.lines_after(store, run_id, node=node, after=after, limit=BATCH)
