"""The local run: the state machine + the local dispatcher, wired to one listener.

``worldtree run`` and ``worldtree retry`` use this; the server will wire the same machine to
its own dispatchers.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from worldtree.backends.base import Backend, RunContext
from worldtree.engine.dispatch import LocalDispatcher
from worldtree.engine.driver import RunDriver, ScopeSink
from worldtree.engine.events import EngineListener
from worldtree.engine.machine import Machine
from worldtree.engine.masking import Masker


def local_driver(ctx: RunContext, listener: EngineListener, *, concurrency: int | None = None,
                 secrets: dict[str, str] | None = None, masker: Masker | None = None,
                 reuse: dict[str, int] | None = None, on_scopes: ScopeSink | None = None,
                 backend_factory: Callable[[str, RunContext], Backend] | None = None) -> RunDriver:
    """A driver that runs ``ctx.graph`` in this process. ``reuse``: node id -> attempt it succeeded in."""
    secrets = secrets or {}
    machine = Machine(ctx.graph, concurrency=concurrency or os.cpu_count() or 1,
                      secrets_available=secrets.keys(), reuse=reuse)
    masker = masker or Masker(list(secrets.values()))
    driver: RunDriver
    dispatcher = LocalDispatcher(ctx, lambda node, stream, line: driver.output(node, stream, line),
                                 secrets=secrets, backend_factory=backend_factory)
    driver = RunDriver(machine, dispatcher, listener, run_id=ctx.run_id, attempt=ctx.attempt, masker=masker,
                       on_scopes=on_scopes)
    return driver
