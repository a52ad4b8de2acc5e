"""Bring a compose project up on the Engine API and wait until it is healthy (seed 003 §7.1).

Run-scoped services (the default) carry the run's label and die with the run in
``DockerBackend.close``. ``keep: true`` services are a named deployment instead: applying the
same name at the same version again changes nothing; another version replaces the old one.
"""

from __future__ import annotations

import asyncio
import time

from worldtree.backends.base import OutputSink
from worldtree.backends.docker.client import Engine
from worldtree.backends.docker.compose import (
    LABEL_KEEP,
    LABEL_SERVICE,
    LABEL_VERSION,
    ComposeProject,
    ComposeService,
    Deployment,
    service_container,
)

#: Docker's default health-check interval; when the file sets none we poll every second but
#: give the service as long as Docker would (``retries`` x 30 s) before calling it unhealthy.
DOCKER_DEFAULT_INTERVAL = 30.0


#: how long a service without a health check must stay up to count as started
SETTLE_SECONDS = 0.5


class ServiceFailed(Exception):
    """A service exited or never became healthy: the step *fails* (exit 1), worldtree did not break."""


class ComposeUp:
    """One ``up`` of one project. Not reused across steps."""

    def __init__(self, engine: Engine, output: OutputSink, grace: float) -> None:
        self._engine, self._output, self._grace = engine, output, grace
        self._ids: dict[str, str] = {}
        self._health: dict[str, asyncio.Task[None]] = {}

    def created(self) -> list[str]:
        """Ids of the containers this ``up`` created or adopted so far."""
        return list(self._ids.values())

    def _say(self, text: str) -> None:
        self._output("stdout", text)

    async def up(self, project: ComposeProject, deployment: Deployment, run_network: str) -> int:
        """0 when every service runs and passes its health check; 1 (with the reason) otherwise."""
        label = f"{deployment.name}@{deployment.version}"
        if deployment.keep and await self._unchanged(project, deployment, run_network):
            self._say(f"services {label}: already up at this version, unchanged")
            return 0
        network = deployment.network or run_network
        if deployment.keep:
            await self._engine.ensure_network(network, {LABEL_SERVICE: deployment.name, LABEL_KEEP: "true"})
        try:
            for svc in project.services:
                for dep, condition in svc.depends_on.items():
                    if condition == "service_healthy":
                        await self._healthy(project, dep)
                await self._start(svc, deployment, network, run_network)
            for svc in project.services:
                await self._healthy(project, svc.name)
        except ServiceFailed as exc:
            self._output("stderr", f"services {label}: {exc}")
            return 1
        finally:
            for task in self._health.values():
                task.cancel()
        self._say(f"services {label}: up ({', '.join(s.name for s in project.services)})")
        return 0

    async def _unchanged(self, project: ComposeProject, deployment: Deployment, run_network: str) -> bool:
        """Kept deployment: same version, all services running -> reuse; otherwise remove the old one."""
        existing = await self._engine.list_containers({LABEL_SERVICE: deployment.name, LABEL_KEEP: "true"})
        wanted = {s.name for s in project.services}
        by_service = {c.get("Labels", {}).get("worldtree.compose.service"): c for c in existing}
        same = (set(by_service) == wanted
                and all(c.get("Labels", {}).get(LABEL_VERSION) == deployment.version for c in existing)
                and all(c.get("State") == "running" for c in existing))
        if same:
            for svc in project.services:
                self._ids[svc.name] = str(by_service[svc.name]["Id"])
                await self._engine.connect(run_network, self._ids[svc.name], [svc.name])
            try:
                for svc in project.services:
                    await self._healthy(project, svc.name)
                return True
            except ServiceFailed:
                self._ids.clear()
        if existing:
            old = {c.get("Labels", {}).get(LABEL_VERSION) for c in existing}
            self._say(f"services {deployment.name}: replacing version {', '.join(sorted(map(str, old)))}")
        for c in existing:
            await self._engine.stop_and_remove(str(c["Id"]), self._grace)
        return False

    async def _start(self, svc: ComposeService, deployment: Deployment, network: str,
                     run_network: str) -> None:
        await self._engine.ensure_image(svc.image, None)
        name, body = service_container(svc, deployment, network)
        await self._engine.remove(name)  # a leftover of a crashed earlier attempt
        cid = await self._engine.create(name, body)
        self._ids[svc.name] = cid
        await self._engine.start(cid)
        if network != run_network:
            await self._engine.connect(run_network, cid, [svc.name])
        self._say(f"service {svc.name}: started ({svc.image})")

    async def _healthy(self, project: ComposeProject, name: str) -> None:
        """Wait (once per service, shared by its dependents) until ``name`` is healthy."""
        if name not in self._health:
            svc = next(s for s in project.services if s.name == name)
            self._health[name] = asyncio.ensure_future(self._wait_healthy(svc))
        await asyncio.shield(self._health[name])

    async def _wait_healthy(self, svc: ComposeService) -> None:
        cid = self._ids[svc.name]
        check = svc.healthcheck
        if check is None:
            # No health check: "started" is enough, but give a crashing service a moment to show it.
            await asyncio.sleep(SETTLE_SECONDS)
            await self._running(svc, cid)
            return
        window = max(1, check.retries) * (check.interval or DOCKER_DEFAULT_INTERVAL)
        give_up = time.monotonic() + check.start_period + window
        poll = check.interval or 1.0
        while True:
            await self._running(svc, cid)
            if await self._engine.exec_status(cid, check.test, check.timeout) == 0:
                self._say(f"service {svc.name}: healthy")
                return
            if time.monotonic() > give_up:
                raise ServiceFailed(f"service {svc.name} is unhealthy: `{' '.join(check.test)}` kept failing")
            await asyncio.sleep(poll)

    async def _running(self, svc: ComposeService, cid: str) -> None:
        """Raise ServiceFailed (with its last log lines) when the service is no longer running;
        a service without a health check that finished with 0 is fine (a one-shot job)."""
        state = (await self._engine.inspect(cid)).get("State", {})
        done_ok = svc.healthcheck is None and state.get("ExitCode") == 0
        if not state.get("Running") and not done_ok:
            for line in await self._engine.logs(cid):
                self._output("stderr", f"{svc.name} | {line}")
            raise ServiceFailed(f"service {svc.name} exited with code {state.get('ExitCode')}")
