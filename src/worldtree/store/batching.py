"""The batching half of every run writer: buffers, the flushing thread, heartbeat timing.

``node_event``/``log`` append to a list under a lock and return (no I/O on the caller's
thread). A daemon thread writes a batch every ``FLUSH_INTERVAL`` or as soon as ``BATCH_SIZE``
items wait, each batch in ONE transaction through :meth:`BatchingWriter._commit` (an upsert of
the node states — several events of one node in a batch collapse to its latest state —, an
insert of the log lines with ``seq`` continuing the run's highest, and the attempt's heartbeat
when it is due). A failed batch goes back to the front of the queue and is retried on the next
tick; ``flush``/``close`` raise :class:`StoreError` if it still fails.

Subclasses only say how to commit a batch and how to read the highest ``seq``: the SQLAlchemy
writer (any database) and the direct SQLite writer (the embedded default's fast path).
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from typing import Any

from worldtree.errors import StoreError
from worldtree.model.records import LogLine, NodeEvent
from worldtree.store.rows import latest_states, log_rows

FLUSH_INTERVAL = 0.1  # seconds
BATCH_SIZE = 500
HEARTBEAT_INTERVAL = 1.0  # the contract asks for at least every 2 s; readers allow 30 s

_open_writers: weakref.WeakSet[BatchingWriter] = weakref.WeakSet()


class BatchingWriter:
    """Writes one attempt's node states and log lines; the writer's run and attempt win over
    the ``run_id``/``attempt`` fields of the records handed to it.

    Thread-safe: any thread may call ``node_event``/``log``/``flush``. ``close`` is idempotent;
    after it, ``node_event``/``log`` raise :class:`StoreError`.
    """

    #: database errors of the subclass's driver, turned into StoreError by flush()
    errors: tuple[type[BaseException], ...] = ()
    #: SQLite keeps times as text
    text_times = False

    def __init__(self, run_id: str, attempt: int) -> None:
        self.run_id = run_id
        self.attempt = attempt
        self._events: list[NodeEvent] = []
        self._lines: list[LogLine] = []
        self._lock = threading.Lock()  # guards the two lists
        self._io_lock = threading.Lock()  # one batch at a time, in order
        self._wake = threading.Event()
        self._stopping = False
        self._closed = False
        self._last_heartbeat = time.monotonic()
        self._seq = self._max_seq()
        self._thread = threading.Thread(target=self._loop, name=f"worldtree-writer-{run_id}", daemon=True)
        self._thread.start()
        _open_writers.add(self)

    # -- what a subclass provides -------------------------------------------------------------
    def _max_seq(self) -> int:
        """The run's highest stored log ``seq`` (0 when none); StoreError if unreadable."""
        raise NotImplementedError

    def _commit(self, node_rows: list[tuple[Any, ...]], log_rows: list[tuple[Any, ...]], beat: bool) -> None:
        """Write one batch in one transaction (rows in ``rows.NODE_KEYS`` / ``rows.LOG_KEYS`` order)."""
        raise NotImplementedError

    # -- called from the engine (any thread) -------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def node_event(self, event: NodeEvent) -> None:
        self._append("_events", event)

    def log(self, line: LogLine) -> None:
        self._append("_lines", line)

    def _append(self, queue: str, item: Any) -> None:
        """O(1) on the caller's thread; wakes the flusher early once a batch is full.

        The queue is looked up under the lock: the flusher swaps in new lists.
        """
        with self._lock:
            if self._closed:
                raise StoreError(f"the writer of run {self.run_id} is closed")
            getattr(self, queue).append(item)
            full = len(self._events) + len(self._lines) >= BATCH_SIZE
        if full:
            self._wake.set()

    def flush(self) -> None:
        """Write everything appended so far, now, on the calling thread."""
        catch: tuple[type[BaseException], ...] = (*self.errors, ValueError, TypeError)  # ValueError: naive datetime
        try:
            self._flush_once()
        except catch as exc:
            raise StoreError(f"cannot write run {self.run_id} to the store: {_reason(exc)}") from exc

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stopping = True
        self._wake.set()
        self._thread.join()
        _open_writers.discard(self)
        self.flush()  # a no-op unless the thread's last batch failed: then retry it, loudly
        self._release()

    def _release(self) -> None:
        """Free connections after the last flush (subclasses that hold one override this)."""

    # -- the flushing thread -----------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            self._wake.wait(FLUSH_INTERVAL)
            self._wake.clear()
            stopping = self._stopping
            try:
                self._flush_once()
            except Exception:
                pass  # the batch is queued again; flush()/close() retry it and raise if it fails
            if stopping:
                return

    def _flush_once(self) -> None:
        with self._io_lock:
            with self._lock:
                events, self._events = self._events, []
                lines, self._lines = self._lines, []
            beat = time.monotonic() - self._last_heartbeat >= HEARTBEAT_INTERVAL
            if not events and not lines and not beat:
                return
            try:
                self._write(events, lines, beat)
            except BaseException:
                with self._lock:  # back to the front, in order, for the next try
                    self._events[:0] = events
                    self._lines[:0] = lines
                raise

    def _write(self, events: list[NodeEvent], lines: list[LogLine], beat: bool) -> None:
        self._commit(latest_states(self.run_id, self.attempt, events, self.text_times),
                     log_rows(self.run_id, self.attempt, self._seq, lines, self.text_times), beat)
        self._seq += len(lines)
        if beat:
            self._last_heartbeat = time.monotonic()


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@atexit.register
def _close_open_writers() -> None:
    """A run that forgot ``close()`` still gets its last 100 ms of output stored."""
    for writer in list(_open_writers):
        try:
            writer.close()
        except Exception:
            pass
