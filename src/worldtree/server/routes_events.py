"""Event streams: ``GET /api/v1/events`` (every run's lifecycle) and ``GET /api/v1/runs/{id}/events``
(one run's node state changes and lifecycle), as Server-Sent Events; their WebSocket twins are in
:mod:`worldtree.server.ws` and share :func:`event_frames` / :func:`run_event_frames`.

Each event is ``id: <event id>`` and ``data: {"id", "kind", "at", "run_id", ...}`` with ``kind``
``run.queued``, ``run.started``, ``run.finished`` or ``node.state`` (``node``, ``state``,
``exit_code``, ``error``, ``attempt``, ...). Ids come from the store's event log and grow in commit
order, so ``Last-Event-ID: N`` (or ``?after=N``) resumes with no gap and no duplicate. A run's
stream ends with ``event: end`` (``{"state"}``) once the run has finished; the global stream
starts at the newest event unless told where (``after=0`` replays the whole log) and never ends.

One poller per process reads new events from the store (any replica's: they share it) and hands
them to every follower's bounded queue. A follower that lets its queue fill up is dropped (its
stream ends; it reconnects with ``Last-Event-ID``), so a stalled client costs a little memory for
a moment and never slows a run or the other followers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Any

import anyio
from anyio import to_thread
from fastapi import APIRouter, FastAPI, Header, Query, Request
from sse_starlette import EventSourceResponse

from worldtree.app import events, service
from worldtree.errors import UsageError
from worldtree.server.auth import require
from worldtree.store.api import RunStore
from worldtree.store.events import Event
from worldtree.store.lifecycle import QUEUED_OPTION

log = logging.getLogger("worldtree.server.events")

router = APIRouter()

#: How often the poller reads new events while someone follows.
POLL_SECONDS = 0.2
#: Events a follower may have waiting before it is dropped.
FOLLOWER_QUEUE = 2000
#: Events read per query (replay and poll).
PAGE = 500
#: After a finished run's replay without its ``run.finished`` event (recorded just after the state),
#: how long a follower waits for it before ending the stream anyway.
FINISH_GRACE_SECONDS = 5.0
MAX_EVENT_ID = 2**62


class Dropped(Exception):
    """The follower fell too far behind; its stream ends (resume with ``Last-Event-ID``)."""


@dataclass(eq=False)
class _Follower:
    run_id: str | None
    send: Any  # MemoryObjectSendStream[Event]
    receive: Any  # MemoryObjectReceiveStream[Event]
    #: set once the follower has replayed the stored events: the hub queues new ones only from then on
    live: bool = False
    dropped: bool = False


@dataclass
class EventHub:
    """Reads the event log once per poll for every follower of this process."""

    store: RunStore
    followers: set[_Follower] = field(default_factory=set)
    position: int | None = None
    #: events a follower may have waiting before it is dropped
    queue_size: int = FOLLOWER_QUEUE
    #: the poller's asyncio task (started by the first follower, in the server's event loop)
    task: Any = None

    async def follow(self, run_id: str | None) -> _Follower:
        if self.position is None:
            self.position = await to_thread.run_sync(events.last_id, self.store)
        send, receive = anyio.create_memory_object_stream[Event](self.queue_size)
        follower = _Follower(run_id, send, receive)
        self.followers.add(follower)
        return follower

    def leave(self, follower: _Follower) -> None:
        self.followers.discard(follower)
        follower.send.close()
        follower.receive.close()

    async def poll_once(self) -> None:
        """Read what is new and hand it to every follower (dropping the ones whose queue is full)."""
        assert self.position is not None
        while True:
            batch = await to_thread.run_sync(partial(events.after, self.store, self.position or 0, limit=PAGE))
            for event in batch:
                self.position = event.id
                for follower in list(self.followers):
                    if not follower.live or (follower.run_id is not None and event.run_id != follower.run_id):
                        continue
                    try:
                        follower.send.send_nowait(event)
                    except anyio.WouldBlock:
                        follower.dropped = True
                        self.leave(follower)
                    except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                        self.leave(follower)
            if len(batch) < PAGE:
                return

    async def serve(self) -> None:
        """The poller: runs for the application's lifetime, reading only while someone follows."""
        while True:
            if self.followers and self.position is not None:
                try:
                    await self.poll_once()
                except Exception as exc:  # the store is away: followers wait; say so
                    log.warning("event poller: %s", exc)
            await anyio.sleep(POLL_SECONDS)


def hub(app: FastAPI) -> EventHub:
    """The application's hub (created with its poller on first use, in the server's event loop)."""
    found: EventHub | None = getattr(app.state, "event_hub", None)
    if found is None:
        found = EventHub(app.state.runtime.store)
        app.state.event_hub = found
    return found


async def follow(center: EventHub, run_id: str | None, after: int) -> AsyncIterator[Event]:
    """Events after ``after`` (of ``run_id``): the stored ones, then live ones from the hub, each once.

    Dropped when the follower's queue overflows (it did not read fast enough)."""
    if center.task is None:  # one poller per process, started in the server's loop by its first follower
        import asyncio

        center.task = asyncio.get_running_loop().create_task(center.serve(), name="worldtree-event-hub")
    follower = await center.follow(run_id)
    try:
        sent = after
        # Replay what is stored; then go live and replay once more: an event the hub handed out
        # before ``live`` was set had committed before it, so the second replay reads it. (Queueing
        # during a long replay would overflow the queue of a follower that reads as fast as it can.)
        for catch_up in (False, True):
            follower.live = catch_up
            while True:
                batch = await to_thread.run_sync(partial(events.after, center.store, sent, run_id=run_id, limit=PAGE))
                for event in batch:
                    sent = event.id
                    yield event
                if len(batch) < PAGE:
                    break
        while True:
            try:
                event = await follower.receive.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                if follower.dropped:
                    raise Dropped() from None
                return
            if event.id > sent:
                sent = event.id
                yield event
    finally:
        center.leave(follower)


# -- frames shared by SSE and the WebSocket twins -------------------------------------------------
async def event_frames(app: FastAPI, after: int | None) -> AsyncIterator[dict[str, Any]]:
    """``{"id", "event", "data"}`` frames of every event after ``after`` (None: from now on)."""
    store: RunStore = app.state.runtime.store
    start = after if after is not None else await to_thread.run_sync(events.last_id, store)
    return _frames(follow(hub(app), None, start))


async def run_event_frames(app: FastAPI, run_id: str, after: int) -> AsyncIterator[dict[str, Any]]:
    """Frames of ``run_id``'s events after ``after``, then ``{"event": "end", "data": {"state"}}``.

    NotFoundError (before anything is sent) when there is no such run."""
    store: RunStore = app.state.runtime.store
    full = await to_thread.run_sync(service.resolve, store, run_id)
    return _run_frames(app, store, full, after)


async def _frames(stream: AsyncIterator[Event]) -> AsyncIterator[dict[str, Any]]:
    try:
        async for event in stream:
            yield {"id": event.id, "event": event.kind, "data": event.as_json()}
    except Dropped:
        yield {"id": None, "event": "dropped", "data": {"message": "this follower fell too far behind; "
                                                                   "reconnect with Last-Event-ID to resume"}}


async def _run_frames(app: FastAPI, store: RunStore, run_id: str, after: int) -> AsyncIterator[dict[str, Any]]:
    """The run's events; the stream ends once the run is final and its ``run.finished`` was sent."""
    state = await to_thread.run_sync(service.run_state, store, run_id)
    # a run `worldtree run` made in this store records no events: what it has, then the end
    server_run = await to_thread.run_sync(_queued, store, run_id)
    stream = follow(hub(app), run_id, after)
    try:
        while True:
            timeout = FINISH_GRACE_SECONDS if service.is_final(state) or not server_run else None
            event: Event | None = None
            with anyio.move_on_after(timeout):
                event = await _next(stream)
            if event is None:  # final, and no more events within the grace (or the stream ended)
                break
            yield {"id": event.id, "event": event.kind, "data": event.as_json()}
            if event.kind == events.RUN_FINISHED:
                state = await to_thread.run_sync(service.run_state, store, run_id)
                if service.is_final(state):
                    break
    except Dropped:
        yield {"id": None, "event": "dropped", "data": {"message": "this follower fell too far behind; "
                                                                   "reconnect with Last-Event-ID to resume"}}
        return
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    state = await to_thread.run_sync(service.run_state, store, run_id)
    yield {"id": None, "event": "end", "data": {"state": state}}


def _queued(store: RunStore, run_id: str) -> bool:
    record = store.get_run(run_id)
    return bool(record is not None and record.options.get(QUEUED_OPTION))


async def _next(stream: AsyncIterator[Event]) -> Event | None:
    try:
        return await stream.__anext__()
    except StopAsyncIteration:
        return None


def _start(last_event_id: str | None, after: int | None) -> int | None:
    """Where a stream resumes: ``Last-Event-ID`` (a reconnecting EventSource) wins over ``after``."""
    if last_event_id:
        try:
            number = int(last_event_id.strip())
        except ValueError:
            raise UsageError(f"Last-Event-ID must be an event id, not {last_event_id!r}") from None
        if not 0 <= number <= MAX_EVENT_ID:
            raise UsageError(f"Last-Event-ID must be an event id between 0 and {MAX_EVENT_ID}")
        return number
    return after


async def _sse(frames: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    async for frame in frames:
        if frame["id"] is None:
            yield {"event": frame["event"], "data": json.dumps(frame["data"])}
        else:
            yield {"id": str(frame["id"]), "data": json.dumps(frame["data"])}


@router.get("/api/v1/events", tags=["events"], response_class=EventSourceResponse, **require("viewer"))
async def all_events(request: Request, after: Annotated[int | None, Query(ge=0, le=MAX_EVENT_ID)] = None,
                     last_event_id: Annotated[str | None, Header()] = None) -> EventSourceResponse:
    """Server-Sent Events of every run: ``run.queued``, ``run.started``, ``run.finished``, ``node.state``.

    ``id:`` the event id; ``Last-Event-ID`` or ``after`` resumes after it (``after=0``: the whole log);
    without either, only events from now on."""
    frames = await event_frames(request.app, _start(last_event_id, after))
    return EventSourceResponse(_sse(frames), ping=15)


@router.get("/api/v1/runs/{run_id}/events", tags=["events"], response_class=EventSourceResponse,
            **require("viewer"))
async def run_events(request: Request, run_id: str, after: Annotated[int | None, Query(ge=0, le=MAX_EVENT_ID)] = None,
                     last_event_id: Annotated[str | None, Header()] = None) -> EventSourceResponse:
    """Server-Sent Events of one run from its start (node state changes and its lifecycle), ending with
    ``event: end`` once it has finished. ``Last-Event-ID`` or ``after`` resumes."""
    frames = await run_event_frames(request.app, run_id, _start(last_event_id, after) or 0)
    return EventSourceResponse(_sse(frames), ping=15)
