"""Micro-measure of the run writer (not a test): ``python tests/store/measure_writer.py [URL]``.

For N nodes it prepares 2 events each (running, succeeded) and 1 log line, then reports
* the caller's cost: ``node_event``/``log`` appends only (what the engine's loop pays);
* the store's cost: the flush transactions, driven synchronously in batches of 500 so that
  the number is not blurred by thread scheduling. Events of one node are placed in different
  batches, the worst case (no collapsing of running+succeeded into one row).
Wall and CPU time are both printed: CPU time is the steadier one on a busy machine.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime

from worldtree.store import LogLine, NodeEvent, open_store
from worldtree.store.batching import BATCH_SIZE, BatchingWriter


def measure(url: str, nodes: int) -> str:
    store = open_store(url)
    run_id = store.create_run(name="measure", source=None, workdir="/", graph_json="{}", options={})
    names = [f"stage/job-{i}/step" for i in range(nodes)]
    lease = store.start_attempt(run_id, node_ids=names)
    attempt = lease.attempt
    writer = store.writer(run_id, attempt, token=lease.token)
    assert isinstance(writer, BatchingWriter)
    now = datetime.now(UTC)
    events = [NodeEvent(run_id, attempt, n, "running", now) for n in names]
    events += [NodeEvent(run_id, attempt, n, "succeeded", now, exit_code=0) for n in names]
    lines = [LogLine(run_id, attempt, n, "stdout", f"line of {n}", now) for n in names]

    probe = BatchingWriter.__new__(BatchingWriter)  # appends only: same code, no thread to race with
    probe.__dict__.update(_lock=writer._lock, _closed=False, _events=[], _lines=[], _wake=writer._wake)
    start = time.perf_counter()
    for ev in events:
        probe.node_event(ev)
    append = time.perf_counter() - start

    wall, cpu = time.perf_counter(), time.process_time()
    for k in range(0, len(events), BATCH_SIZE):
        writer._write(events[k:k + BATCH_SIZE], [], {})
    events_wall, events_cpu = time.perf_counter() - wall, time.process_time() - cpu
    wall, cpu = time.perf_counter(), time.process_time()
    for k in range(0, len(lines), BATCH_SIZE):
        writer._write([], lines[k:k + BATCH_SIZE], {})
    lines_wall, lines_cpu = time.perf_counter() - wall, time.process_time() - cpu
    writer.close()
    store.close()
    return (f"{url.split(':')[0]:<20} {len(events):>6} events: append {append * 1e3:5.1f} ms, "
            f"flush {events_wall * 1e3:6.1f} ms wall / {events_cpu * 1e3:6.1f} ms cpu | "
            f"{len(lines):>5} log lines: flush {lines_wall * 1e3:6.1f} ms wall / {lines_cpu * 1e3:6.1f} ms cpu")


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{tempfile.mkdtemp()}/measure.db"
    for n in (2000, 2000, 5000):
        print(measure(target, n))
