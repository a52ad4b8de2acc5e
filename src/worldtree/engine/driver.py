"""The driver: feeds events into the state machine and carries out its decisions on an event loop.

It is the only part of the engine that touches time and asyncio. For each event it calls
:meth:`Machine.advance`, then, in this order: reports every node change to the listener (the
store's writer: write first), asks the dispatcher to stop and start nodes, and arms one timer for
the machine's next ``wake_at``. Results come back from the dispatcher as events.

Failures of worldtree itself never vanish: a listener that raises (a closed or broken store
writer) or a fault reported from another thread (the store could not take writes, the lease was
lost) becomes a :class:`~worldtree.engine.machine.Fault`; the run stops everything it started
and ends as ``error``, and :attr:`RunDriver.fault` says why.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

from worldtree.engine.dispatch import Dispatcher
from worldtree.engine.events import EngineListener
from worldtree.engine.machine import (
    Begin,
    CancelRequested,
    Decision,
    Dispatch,
    Event,
    Fault,
    Machine,
    NodeExited,
    Outcome,
    Tick,
)
from worldtree.engine.masking import Masker
from worldtree.model.records import LogLine, NodeEvent
from worldtree.model.states import NodeState, RunState

#: Called with scope id -> wall-clock deadline whenever scopes with a timeout start (the store keeps them).
ScopeSink = Callable[[dict[str, datetime]], None]


class RunDriver:
    """Runs one attempt: ``await run()``; ``cancel()`` from the loop, ``*_threadsafe`` from elsewhere."""

    def __init__(self, machine: Machine, dispatcher: Dispatcher, listener: EngineListener, *,
                 run_id: str, attempt: int, masker: Masker | None = None,
                 on_scopes: ScopeSink | None = None) -> None:
        self.machine = machine
        self.dispatcher = dispatcher
        self.listener = listener
        self.run_id = run_id
        self.attempt = attempt
        self.masker = masker or Masker()
        self.on_scopes = on_scopes
        self.fault: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Future[RunState] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._in_advance = False
        self._queue: list[Event] = []

    # -- public -------------------------------------------------------------------------------
    async def run(self) -> RunState:
        self._loop = asyncio.get_running_loop()
        self._done = self._loop.create_future()
        try:
            self.feed(Begin(time.time()))
            state = await self._done
        finally:
            if self._timer is not None:
                self._timer.cancel()
            await self.dispatcher.close()
        return state

    def cancel(self, reason: str = "cancelled by user") -> None:
        """Cancel the run (on the loop's thread); a second call also stops ``post``/``always()`` nodes."""
        self.feed(CancelRequested(reason, time.time()))

    def cancel_threadsafe(self, reason: str) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.cancel, reason)

    def fault_threadsafe(self, error: BaseException | str) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._raise_fault, str(error))

    @property
    def states(self) -> dict[str, NodeState]:
        return self.machine.states

    # -- the loop -----------------------------------------------------------------------------
    def feed(self, event: Event) -> None:
        """Advance the machine by ``event`` and carry out the decision (re-entrant calls queue up)."""
        self._queue.append(event)
        if self._in_advance:
            return
        self._in_advance = True
        try:
            while self._queue:
                decision = self.machine.advance(self._queue.pop(0))
                self._apply(decision)
        finally:
            self._in_advance = False

    def _apply(self, d: Decision) -> None:
        for change in d.changes:
            self._emit(change.node, change.state, change.reason)
        if d.scopes_started and self.on_scopes is not None:
            scopes = self.machine.graph.scopes
            try:  # stored as deadlines: what a process taking the run over needs
                self.on_scopes({k: datetime.fromtimestamp(v + (scopes[k].timeout or 0.0), UTC)
                                for k, v in d.scopes_started.items()})
            except Exception as exc:
                self._raise_fault(f"{type(exc).__name__}: {exc}")
        for node_id, why in d.stop:
            self.dispatcher.stop(node_id, why)
        for work in d.dispatch:
            self.dispatcher.start(work, self._report)
        self._arm(d.wake_at)
        if d.finished is not None and self._done is not None and not self._done.done():
            self._done.set_result(d.finished)

    def _report(self, work: Dispatch, outcome: Outcome) -> None:
        self.feed(NodeExited(work.node.id, outcome, time.time(), work.purpose))

    def _arm(self, wake_at: float | None) -> None:
        if wake_at == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = wake_at
        if wake_at is not None and self._loop is not None:
            delay = max(0.0, wake_at - time.time())
            self._timer = self._loop.call_at(self._loop.time() + delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.feed(Tick(time.time()))

    def _raise_fault(self, error: str) -> None:
        if self.fault is None:
            self.fault = error
        self.feed(Fault(error, time.time()))

    # -- reporting ----------------------------------------------------------------------------
    def _emit(self, node_id: str, state: NodeState, reason: str | None) -> None:
        p = self.machine.nodes[node_id]
        event = NodeEvent(
            run_id=self.run_id, attempt=self.attempt, node=node_id, state=state.value, ts=datetime.now(UTC),
            started_at=_utc(p.started_at), finished_at=_utc(p.finished_at) if state != NodeState.RUNNING else None,
            exit_code=p.exit_code, error=self.masker.mask_opt(p.error), reason=reason, try_number=p.try_number,
            deadline_at=_utc(p.deadline.at) if p.deadline is not None and state == NodeState.RUNNING else None,
            retry_at=_utc(p.retry_at))
        try:
            self.listener.on_event(event)
        except Exception as exc:
            self._listener_failed(exc)

    def output(self, node_id: str, stream: str, line: str) -> None:
        """Where dispatchers send output: masked, then to the listener."""
        try:
            self.listener.on_log(LogLine(self.run_id, self.attempt, node_id, stream, self.masker.mask(line),
                                         datetime.now(UTC)))
        except Exception as exc:
            self._listener_failed(exc)

    def _listener_failed(self, exc: Exception) -> None:
        if self.fault is not None:
            return  # already ending; the first failure is the one to report
        error = f"{type(exc).__name__}: {exc}"
        self.fault = error
        if self._loop is not None:
            self._loop.call_soon(self.feed, Fault(error, time.time()))


def _utc(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)
