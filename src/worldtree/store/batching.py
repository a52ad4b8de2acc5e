"""The run writer, once for both drivers: buffers, the flushing thread, the heartbeat thread.

``node_event``/``log`` append to a list under a lock and return (no I/O on the caller's thread).
The flushing thread writes a batch every ``FLUSH_INTERVAL`` or as soon as ``BATCH_SIZE`` items
wait, each batch in ONE transaction: ``runs.log_seq`` is advanced by the number of lines
(``UPDATE … RETURNING``, so the database orders the lines of every writer of a run, and commits
happen in ``seq`` order: a follower polling ``logs(after_seq=…)`` never skips one), the node
events become compare-and-set updates (:mod:`.transitions`), the lines are inserted, and the
scope deadlines merged. Only then is ``on_commit`` called: write first, then show.

A batch that fails goes back to the front of the queue and is retried with backoff; once the
oldest unwritten batch has waited ``FAULT_AFTER`` or ``MAX_BUFFERED`` items wait, ``on_fault``
hears a :class:`StoreError` (the engine ends the run as ``error``). The heartbeat thread renews
the attempt's lease on its own connection, independently of a stuck batch, and reads the cancel
request: a lost lease is ``on_fault(ConflictError)``, a cancel is ``on_cancel(reason)`` (once).

Subclasses only say how to open a transaction: the SQLAlchemy writer (any database) and the
direct SQLite writer (the embedded default's fast path).
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from worldtree.errors import ConflictError, StoreError
from worldtree.model.records import LogLine, NodeEvent
from worldtree.store import lifecycle
from worldtree.store.api import LEASE_SECONDS
from worldtree.store.rows import clean, utc_param
from worldtree.store.transitions import RUN_LOG_SEQ, Transition, collapse
from worldtree.store.tx import Tx

FLUSH_INTERVAL = 0.1  # seconds
BATCH_SIZE = 500
HEARTBEAT_INTERVAL = 1.0  # renews a lease of LEASE_SECONDS (30 s)
FAULT_AFTER = 5.0  # seconds a batch may keep failing before on_fault hears of it
#: seconds one write may stay in flight (waiting for a lock another writer holds) before it counts
#: as a store that stopped taking writes: busy runs sharing one SQLite file queue for its lock
STALL_AFTER = 12.0
#: seconds close() waits for a flushing thread stuck in a write once a fault was reported
CLOSE_AFTER_FAULT = 2.0
MAX_BUFFERED = 200_000  # items; past this, on_fault and appends raise StoreError
BACKOFF_MAX = 1.0

OnCommit = Callable[[list[NodeEvent], list[LogLine]], None]
OnCancel = Callable[[str], None]
OnFault = Callable[[BaseException], None]

INSERT_LOG = ("INSERT INTO logs (run_id, attempt, node, seq, ts, stream, line) "
              "VALUES (:run_id, :attempt, :node, :seq, :ts, :stream, :line)")

_open_writers: weakref.WeakSet[BatchingWriter] = weakref.WeakSet()


class BatchingWriter:
    """Writes one attempt's node states and log lines; the writer's run and attempt win over
    the ``run_id``/``attempt`` fields of the records handed to it.

    Thread-safe: any thread may call ``node_event``/``log``/``scope_deadlines``/``flush``.
    Callbacks run on the writer's threads (``on_commit`` also in ``flush``/``close``, on the
    caller's); an exception they raise goes to ``on_fault``. ``on_fault`` is called at most once;
    without it, ``close`` raises the fault. ``close`` is idempotent; after it, appends raise
    :class:`StoreError`.
    """

    #: database errors of the subclass's driver, turned into StoreError by flush()
    errors: tuple[type[BaseException], ...] = ()

    def __init__(self, run_id: str, attempt: int, *, token: int, on_commit: OnCommit | None = None,
                 on_cancel: OnCancel | None = None, on_fault: OnFault | None = None) -> None:
        self.run_id, self.attempt, self.token = run_id, attempt, token
        self.on_commit, self.on_cancel, self.on_fault = on_commit, on_cancel, on_fault
        self._lease_seconds = self._guarded("open a writer for", self._claimed_lease)
        self._events: list[NodeEvent] = []
        self._lines: list[LogLine] = []
        self._deadlines: dict[str, datetime] = {}
        self._lock = threading.Lock()  # guards the buffers and the fault
        self._io_lock = threading.Lock()  # one batch at a time, in order
        self._wake = threading.Event()  # a full batch waits
        self._halt = threading.Event()  # close() was called
        self._stopping = False
        self._closed = False
        self._fault: BaseException | None = None
        self._unwritten_since: float | None = None  # when the oldest unwritten batch was first tried
        self._last_error: BaseException | None = None  # why it is still unwritten
        self._cancel_seen = False
        self._threads = [threading.Thread(target=self._flush_loop, name=f"worldtree-writer-{run_id}", daemon=True),
                         threading.Thread(target=self._beat_loop, name=f"worldtree-lease-{run_id}", daemon=True)]
        for thread in self._threads:
            thread.start()
        _open_writers.add(self)

    # -- what a subclass provides -------------------------------------------------------------
    def _transaction(self, heartbeat: bool) -> AbstractContextManager[Tx]:
        """One write transaction; ``heartbeat``: on the lease's own connection, giving up on locks fast."""
        raise NotImplementedError

    def _release(self) -> None:
        """Free connections after the last flush (subclasses that hold some override this)."""

    # -- called from the engine (any thread) -------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def backlog(self) -> int:
        """Records appended and not written yet. Read without the lock: backpressure needs an
        estimate, not a count, and the lock is the writer's hot path."""
        return len(self._events) + len(self._lines)

    def node_event(self, event: NodeEvent) -> None:
        self._append(True, event)

    def log(self, line: LogLine) -> None:
        self._append(False, line)

    def scope_deadlines(self, deadlines: dict[str, datetime]) -> None:
        """Merge ``{scope_id: wall-clock deadline}`` into the attempt's, with the next batch."""
        with self._lock:
            self._deadlines.update(deadlines)

    def _append(self, is_event: bool, item: Any) -> None:
        """O(1) on the caller's thread; wakes the flusher early once a batch is full."""
        with self._lock:
            if self._closed:
                raise StoreError(f"the writer of run {self.run_id} is closed")
            waiting = len(self._events) + len(self._lines)
            if waiting >= MAX_BUFFERED:
                raise StoreError(f"run {self.run_id}: {waiting} records wait for a store that does not take "
                                 "them; the run must stop")
            # The flusher swaps in new lists: the current one is looked up under the lock.
            (self._events if is_event else self._lines).append(item)
        if waiting + 1 >= BATCH_SIZE:
            self._wake.set()

    def flush(self) -> None:
        """Write everything appended so far, now, on the calling thread."""
        self._guarded("write", self._flush_once)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stopping = True
        self._halt.set()
        self._wake.set()
        faulted = self._fault is not None
        for thread in self._threads:  # once the store is known broken, a write stuck on a lock is not awaited
            thread.join(CLOSE_AFTER_FAULT if faulted else None)
        _open_writers.discard(self)
        if any(thread.is_alive() for thread in self._threads):
            why = _reason(self._fault) if self._fault is not None else "a write has not returned"
            raise StoreError(f"run {self.run_id}: the store stopped taking writes ({why}); "
                             "the last records could not be written")
        try:
            self.flush()  # a no-op unless the thread's last batch failed: then retry it, loudly
        finally:
            self._release()
        if self._fault is not None and self.on_fault is None:
            raise self._fault

    # -- the flushing thread -----------------------------------------------------------------
    def _flush_loop(self) -> None:
        backoff = 0.0
        while True:
            if backoff:
                self._halt.wait(backoff)  # appends do not hurry a retry
            else:
                self._wake.wait(FLUSH_INTERVAL)
            self._wake.clear()
            stopping = self._stopping
            try:
                self._flush_once()
                backoff = 0.0
            except Exception as exc:  # queued again; reported once it lasts, retried in close()
                backoff = min(max(backoff * 2, FLUSH_INTERVAL), BACKOFF_MAX)
                self._last_error = exc
                self._check_stuck()
            if stopping:
                return

    def _check_stuck(self) -> None:
        since, exc = self._unwritten_since, self._last_error
        with self._lock:
            waiting = len(self._events) + len(self._lines)
        limit = FAULT_AFTER if exc is not None else STALL_AFTER
        if waiting >= MAX_BUFFERED or (since is not None and time.monotonic() - since >= limit):
            why = f": {_reason(exc)}" if exc is not None else " (a write has not returned)"
            self._report(StoreError(f"cannot write run {self.run_id} to the store for {limit:g} s "
                                    f"({waiting} records waiting){why}"))

    def _flush_once(self) -> None:
        with self._io_lock:
            with self._lock:
                events, self._events = self._events, []
                lines, self._lines = self._lines, []
                deadlines, self._deadlines = self._deadlines, {}
            if not events and not lines and not deadlines:
                return
            if self._unwritten_since is None:
                self._unwritten_since = time.monotonic()
            try:
                first_seq, refused = self._write(events, lines, deadlines)
            except BaseException:
                with self._lock:  # back to the front, in order, for the next try
                    self._events[:0] = events
                    self._lines[:0] = lines
                    self._deadlines = {**deadlines, **self._deadlines}
                raise
            self._unwritten_since = self._last_error = None
            self._committed(events, lines, first_seq, refused)

    def _write(self, events: list[NodeEvent], lines: list[LogLine],
               deadlines: dict[str, datetime]) -> tuple[int, list[tuple[str, str, Transition]]]:
        """One batch, one transaction: (the first line's seq, the node updates refused)."""
        run_id, attempt = self.run_id, self.attempt
        refused: list[tuple[str, str, Transition]] = []
        first_seq = 0
        with self._transaction(False) as tx:
            as_text = tx.as_text
            if lines:  # runs first: every writer takes the run's row lock before any other
                top = tx.rows(RUN_LOG_SEQ.sql, {"run_id": run_id, "n": len(lines)})
                if not top:
                    raise StoreError(f"run {run_id} is no longer in the store")
                first_seq = int(top[0][0]) - len(lines) + 1
            for transition, params in collapse(run_id, attempt, events, as_text):
                if tx.run(transition.sql, params) == 0:
                    refused.append((params["node"], params["state"], transition))
            if lines:
                tx.run_many(INSERT_LOG, [
                    {"run_id": run_id, "attempt": attempt, "node": line.node, "seq": seq,
                     "ts": utc_param(line.ts, as_text), "stream": line.stream, "line": clean(line.line)}
                    for seq, line in enumerate(lines, first_seq)])
            if deadlines:
                lifecycle.merge_scope_deadlines(tx, run_id, attempt, deadlines)
        return first_seq, refused

    def _committed(self, events: list[NodeEvent], lines: list[LogLine], first_seq: int,
                   refused: list[tuple[str, str, Transition]]) -> None:
        if refused:
            said = "; ".join(f"{node} → {state} (allowed only from {', '.join(sorted(tr.sources or ()))})"
                             for node, state, tr in refused[:5])
            self._report(ConflictError(
                f"run {self.run_id} attempt {self.attempt}: the store refused {len(refused)} node state "
                f"change(s): {said}; another process changed them, or the engine reported an impossible "
                f"transition; the stored states stand"))
        if self.on_commit is None:
            return
        if refused:
            skip = {node for node, _, _ in refused}
            events = [ev for ev in events if ev.node not in skip]
        run_id, attempt = self.run_id, self.attempt
        shown = [LogLine(run_id, attempt, line.node, line.stream, line.line, line.ts, seq)
                 for seq, line in enumerate(lines, first_seq)]
        try:
            self.on_commit(events, shown)
        except Exception as exc:
            self._report(exc)

    # -- the heartbeat thread ----------------------------------------------------------------
    def _beat_loop(self) -> None:
        failing_since: float | None = None
        while not self._halt.wait(HEARTBEAT_INTERVAL):
            self._check_stuck()
            try:
                with self._transaction(True) as tx:
                    held, cancel = lifecycle.renew_attempt(tx, self.run_id, self.attempt, self.token,
                                                           self._lease_seconds, datetime.now(UTC))
            except Exception as exc:
                failing_since = failing_since or time.monotonic()
                # The lease holds for _lease_seconds: other writers' locks may delay renewals that long/2.
                allowed = max(FAULT_AFTER, self._lease_seconds / 2)
                if time.monotonic() - failing_since >= allowed:
                    self._report(StoreError(f"cannot renew the lease of run {self.run_id} for "
                                            f"{allowed:g} s: {_reason(exc)}"))
                continue
            failing_since = None
            if not held:
                self._report(ConflictError(
                    f"lost the lease of run {self.run_id} attempt {self.attempt}: another process took the "
                    f"run over (a retry after this one looked dead); stop, its work is no longer ours"))
                return
            if cancel is not None and not self._cancel_seen:
                self._cancel_seen = True
                if self.on_cancel is not None:
                    try:
                        self.on_cancel(cancel)
                    except Exception as exc:
                        self._report(exc)

    # -- helpers -----------------------------------------------------------------------------
    def _claimed_lease(self) -> float:
        with self._transaction(False) as tx:
            return lifecycle.attempt_lease(tx, self.run_id, self.attempt, self.token) or LEASE_SECONDS

    def _guarded(self, action: str, call: Callable[[], Any]) -> Any:
        catch: tuple[type[BaseException], ...] = (*self.errors, ValueError, TypeError)  # ValueError: naive datetime
        try:
            return call()
        except (ConflictError, StoreError):
            raise
        except catch as exc:
            raise StoreError(f"cannot {action} run {self.run_id}: {_reason(exc)}") from exc

    def _report(self, fault: BaseException) -> None:
        """Tell ``on_fault`` of the first fault (once); a fault it raises itself has nowhere to go."""
        with self._lock:
            if self._fault is not None:
                return
            self._fault = fault
        if self.on_fault is not None:
            try:
                self.on_fault(fault)
            except Exception:
                pass


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@atexit.register
def _close_at_exit() -> None:
    """A run that forgot ``close()`` still gets its last 100 ms of output stored."""
    for writer in list(_open_writers):
        try:
            writer.close()
        except Exception:
            pass
