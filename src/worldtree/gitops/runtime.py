"""The server's GitOps threads: the delivery consumer, the status reporter and the scheduler.

Started by the server's lifespan beside the executors and stopped with them (same ``stop``
event). ``wake`` is set by the webhook route so a delivery is handled at once rather than at
the next poll; a run created here wakes this replica's executors (PostgreSQL also NOTIFYs the
others). The encryption key is loaded once, at start-up: a bad ``$WORLDTREE_SECRET_KEY`` stops
the server from starting instead of failing every webhook.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass, field

from worldtree.app.secrets_store import SecretKeys
from worldtree.app.service import ServiceConfig
from worldtree.gitops.generator import Generator
from worldtree.gitops.repos import cipher
from worldtree.gitops.schedules import Scheduler
from worldtree.gitops.status import Reporter
from worldtree.store.api import RunStore

PUBLIC_URL_ENV = "WORLDTREE_PUBLIC_URL"


@dataclass
class GitopsRuntime:
    secrets: SecretKeys
    wake: threading.Event = field(default_factory=threading.Event)


def start(store: RunStore, data_dir: str, stop: threading.Event, wake_executors: threading.Event,
          threads: list[threading.Thread], *, public_url: str | None = None) -> GitopsRuntime:
    """Start the three threads (appended to ``threads``); the runtime the routes use."""
    runtime = GitopsRuntime(cipher(data_dir))
    config = ServiceConfig(data_dir)
    owner = f"{os.getpid()}@{socket.gethostname()}"
    url = public_url or os.environ.get(PUBLIC_URL_ENV, "").strip() or "http://localhost:8080"
    workers = {
        "gitops-consumer": Generator(store, config, runtime.secrets, owner=owner, wake=runtime.wake,
                                     on_run=wake_executors.set).serve,
        "gitops-status": Reporter(store, runtime.secrets, public_url=url).serve,
        "gitops-scheduler": Scheduler(store, config, owner=owner, on_run=wake_executors.set).serve,
    }
    for name, target in workers.items():
        thread = threading.Thread(target=target, args=(stop,), name=name, daemon=True)
        thread.start()
        threads.append(thread)
    return runtime
