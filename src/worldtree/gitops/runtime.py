"""The server's GitOps threads: the delivery consumer, the status reporter and the scheduler.

Started by the server's lifespan beside the executors and stopped with them (same ``stop``
event). Without a broker, the route's :meth:`GitopsRuntime.notify` wakes this replica's consumer
so a delivery is handled at once rather than at the next poll of the store. With
``--events nats://…`` it publishes the delivery on JetStream instead, and a durable pull consumer
(:mod:`.nats_queue`) feeds the consumer; the store is then swept only for deliveries a failed
publish left behind. A run created here wakes this replica's executors (PostgreSQL also NOTIFYs
the others). The encryption key is loaded once, at start-up: a bad ``$WORLDTREE_SECRET_KEY``
stops the server from starting instead of failing every webhook.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass, field

from worldtree.app.secrets_store import SecretKeys
from worldtree.app.service import ServiceConfig
from worldtree.gitops.generator import Generator
from worldtree.gitops.nats_queue import NatsQueue
from worldtree.gitops.repos import cipher
from worldtree.gitops.schedules import Scheduler
from worldtree.gitops.status import Reporter
from worldtree.store.api import RunStore

PUBLIC_URL_ENV = "WORLDTREE_PUBLIC_URL"
#: Behind a broker: a queued delivery older than this is taken from the store (its publish failed).
SWEEP_AFTER_SECONDS = 30.0
#: Store-queue consumers per replica: deliveries of different repositories (and commits) are handled
#: side by side; git waits more than it computes. (Behind NATS one pulls; the others sweep.)
CONSUMERS = 2


@dataclass
class GitopsRuntime:
    secrets: SecretKeys
    wake: threading.Event = field(default_factory=threading.Event)
    queue: NatsQueue | None = None

    def notify(self, row_id: str, msg_id: str) -> None:
        """A delivery was stored: put it on the stream, or wake the store consumer."""
        if self.queue is not None:
            self.queue.publish(row_id, msg_id)
        else:
            self.wake.set()


def start(store: RunStore, data_dir: str, stop: threading.Event, wake_executors: threading.Event,
          threads: list[threading.Thread], *, public_url: str | None = None,
          events_url: str | None = None) -> GitopsRuntime:
    """Start the threads (appended to ``threads``); the runtime the routes use."""
    runtime = GitopsRuntime(cipher(data_dir))
    config = ServiceConfig(data_dir)
    owner = f"{os.getpid()}@{socket.gethostname()}"
    url = public_url or os.environ.get(PUBLIC_URL_ENV, "").strip() or "http://localhost:8080"
    generators = [Generator(store, config, runtime.secrets, owner=f"{owner}#{number + 1}", wake=runtime.wake,
                            on_run=wake_executors.set, poll_seconds=5.0 if events_url else 1.0,
                            sweep_after=SWEEP_AFTER_SECONDS if events_url else 0.0)
                  for number in range(CONSUMERS)]
    if events_url:
        runtime.queue = NatsQueue(events_url)
        threads.append(runtime.queue.start(generators[0].settle, stop))
    workers = {f"gitops-consumer-{number + 1}": g.serve for number, g in enumerate(generators)}
    workers["gitops-status"] = Reporter(store, runtime.secrets, public_url=url).serve
    workers["gitops-scheduler"] = Scheduler(store, config, owner=owner, on_run=wake_executors.set).serve
    for name, target in workers.items():
        thread = threading.Thread(target=target, args=(stop,), name=name, daemon=True)
        thread.start()
        threads.append(thread)
    return runtime
