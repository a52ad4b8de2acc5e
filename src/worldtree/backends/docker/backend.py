"""DockerBackend: image, plugin, language and service steps on a Docker Engine API.

Follows :mod:`worldtree.backends.base`. Per step: pull the image if absent, create a
container (see :mod:`.convert`), attach, start, stream output, read the exit code, remove the
container. Per run: one API client, one network when the run has service steps (so services
are reachable by name), and ``close`` sweeps everything labelled with the run id.

Concurrency: ``execute`` runs concurrently; shared state is the client (safe), the image
cache (locked per image), the run network (created once under a lock) and the set of
background removals that ``close`` waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Awaitable, Mapping
from typing import Any

from worldtree.backends import child_env
from worldtree.backends.base import OutputSink, RunContext, StepRequest
from worldtree.backends.docker.client import Engine
from worldtree.backends.docker.compose import Deployment, parse_compose
from worldtree.backends.docker.convert import (
    LABEL_RUN,
    RunFacts,
    container_env,
    container_name,
    service_env,
    step_container,
)
from worldtree.backends.docker.services import ComposeUp
from worldtree.errors import BackendError, WorldtreeError
from worldtree.model.graph import slug
from worldtree.ops.config import DEFAULTS, load_config, merge_config

__all__ = ["DockerBackend"]

SUPPORTED_SERVICE_TYPES = ("docker-compose",)


class DockerBackend:
    """The ``docker`` target kind. Created once per run by the registry; no I/O until ``execute``."""

    def __init__(self, ctx: RunContext) -> None:
        self._ctx = ctx
        self._engine = Engine()
        self._config: dict[str, Any] | None = None
        self._network: str | None = None
        self._network_lock = asyncio.Lock()
        # Services are reachable by name only on a user-defined network; runs without services
        # stay on the engine's default network (one less object to create and remove).
        self._needs_network = any(n.target.kind == "docker" and n.target.service for n in ctx.graph.nodes)
        self._background: set[asyncio.Future[None]] = set()

    # --- the contract ------------------------------------------------------------------------

    async def execute(self, req: StepRequest, output: OutputSink) -> int:
        target = req.node.target
        if target.service and req.purpose == "run":
            return await self._service(req, output)
        facts = await self._facts()
        name = container_name(self._ctx.run_id, req.node.id, req.try_number, req.purpose,
                              secrets.token_hex(3))
        plan = step_container(req, facts, name=name)
        await self._engine.ensure_image(plan.image, plan.auth)
        ref = plan.name  # the name until create returns: cleanup works at every point
        try:
            ref = await self._engine.create(plan.name, plan.body, plan.files)
            code = await self._engine.run_attached(ref, output, needles=self._ctx.secret_values,
                                                   paused=self._ctx.output_paused)
        except asyncio.CancelledError:
            await self._unstoppable(self._engine.stop_and_remove(ref, self._ctx.grace_seconds))
            raise
        except BaseException:
            await self._unstoppable(self._engine.remove(ref))
            raise
        # Removal is off the step's critical path; close() waits for it.
        self._track(asyncio.ensure_future(self._engine.remove(ref)))
        return code

    async def close(self) -> None:
        """Wait for pending removals, then remove every container and network of this run."""
        if self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
        if self._engine.connected:
            with contextlib.suppress(WorldtreeError):
                for info in await self._engine.list_containers({LABEL_RUN: self._ctx.run_id}):
                    await self._engine.remove(str(info["Id"]))
            await self._engine.remove_networks({LABEL_RUN: self._ctx.run_id})
        self._network = None
        await self._engine.close()

    # --- services ----------------------------------------------------------------------------

    async def _service(self, req: StepRequest, output: OutputSink) -> int:
        spec = req.node.target.service or {}
        kind = str(spec.get("type") or "docker-compose")
        if kind not in SUPPORTED_SERVICE_TYPES:
            raise BackendError(f"service type {kind!r} is not supported by this backend (docker); "
                               f"use {', '.join(SUPPORTED_SERVICE_TYPES)}")
        facts = await self._facts()
        variables = service_env(spec)
        project = parse_compose(spec.get("config") or "", {**container_env(req.env, facts), **variables})
        for warning in project.warnings:
            output("stderr", f"worldtree: {warning}")
        deployment = Deployment(name=str(spec.get("name") or req.node.name),
                                version=str(spec.get("version", "latest")),
                                keep=bool(spec.get("keep", False)), run_id=self._ctx.run_id,
                                node_id=req.node.id, env=variables)
        network = facts.network or await self._run_network()
        compose = ComposeUp(self._engine, output, self._ctx.grace_seconds)
        try:
            return await compose.up(project, deployment, network)
        except asyncio.CancelledError:
            # Run-scoped services of a cancelled step go now, not at close(): nothing keeps running.
            if not deployment.keep:
                for cid in compose.created():
                    await self._unstoppable(self._engine.stop_and_remove(cid, self._ctx.grace_seconds))
            raise

    # --- helpers -----------------------------------------------------------------------------

    def config(self) -> Mapping[str, Any]:
        """``ctx.config`` over the built-in defaults; ``load_config()`` when the run passed none."""
        if self._config is None:
            try:
                given = dict(self._ctx.config)
                self._config = merge_config(DEFAULTS, given) if given else load_config()
            except WorldtreeError as exc:
                raise BackendError(str(exc)) from None
        return self._config

    async def _facts(self) -> RunFacts:
        return RunFacts(run_id=self._ctx.run_id, workdir=self._ctx.workdir, config=self.config(),
                        allow_env=list(self._ctx.allow_env), allow_all_env=self._ctx.allow_all_env,
                        host_env=child_env.inherited(os.environ, "all"),  # never worldtree's own variables
                        network=await self._run_network() if self._needs_network else None)

    async def _run_network(self) -> str:
        async with self._network_lock:
            if self._network is None:
                name = f"wt-{slug(self._ctx.run_id)[:40]}"
                await self._engine.ensure_network(name, {LABEL_RUN: self._ctx.run_id})
                self._network = name
            return self._network

    def _track(self, task: asyncio.Future[None]) -> None:
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _unstoppable(self, work: Awaitable[None]) -> None:
        """Run cleanup to the end even if the caller is cancelled again; close() also waits for it."""
        task = asyncio.ensure_future(work)
        self._track(task)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(task)
