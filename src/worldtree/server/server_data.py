"""The server's data features (secrets, stored pipelines, jobs, artifacts): routers and start-up.

``server/app.py`` calls :func:`start` in its lifespan (checks the secret key against the stored
secrets, points artifacts at the data dir, starts the hourly purge) and :func:`include` once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, Request

from worldtree.app import artifacts, secrets_store
from worldtree.store.api import RunStore

log = logging.getLogger("worldtree.server")

#: How often expired artifacts are purged (also once at start).
PURGE_SECONDS = 3600.0
_keys: dict[str, secrets_store.SecretKeys] = {}


def start(store: RunStore, data_dir: str) -> Callable[[list[str]], dict[str, str]]:
    """Server start: the secret key (refused if it cannot read the stored secrets), the artifact
    root, the purge thread; returns what resolves a run's secret names for the executors."""
    keys = secrets_store.load_keys(data_dir)
    secrets_store.check_keys(store, keys)
    _keys[data_dir] = keys
    artifacts.configure_root(Path(data_dir) / "artifacts")
    threading.Thread(target=_purge_loop, args=(store,), name="artifact-purge", daemon=True).start()
    return lambda names: secrets_store.resolve(store, keys, names)


def keys(request: Request) -> secrets_store.SecretKeys:
    """The server's secret keys (loaded at start)."""
    data_dir = request.app.state.runtime.config.data_dir
    if data_dir not in _keys:
        _keys[data_dir] = secrets_store.load_keys(data_dir)
    return _keys[data_dir]


def _purge_loop(store: RunStore) -> None:
    stop = threading.Event()
    while True:
        try:
            purged = artifacts.purge(store)
            if purged:
                log.info("purged %d expired artifact(s)", purged)
        except Exception as exc:  # the store may be away for a while: the next pass tries again
            log.error("artifact purge failed: %s", exc)
        stop.wait(PURGE_SECONDS)


def include(app: FastAPI) -> None:
    from worldtree.server.routes_artifacts import router as artifacts_router
    from worldtree.server.routes_jobs import router as jobs_router
    from worldtree.server.routes_pipelines import router as pipelines_router
    from worldtree.server.routes_secrets import router as secrets_router

    for router in (secrets_router, pipelines_router, jobs_router, artifacts_router):
        app.include_router(router)
