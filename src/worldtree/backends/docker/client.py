"""Thin I/O over the Docker Engine API (aiodocker): the only module that talks to the daemon.

Docker and Podman's compatible socket both work; the endpoint comes from ``DOCKER_HOST`` as for
every Docker tool. aiodocker/aiohttp errors never leave this module: they become
:class:`~worldtree.errors.BackendError` (or :class:`~worldtree.errors.ConnectError`).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import tarfile
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiodocker
import aiohttp

from worldtree.backends.base import OutputSink, output_room
from worldtree.backends.spawn import LineSplitter
from worldtree.errors import BackendError, ConnectError

#: Docker Engine API version spoken: Docker >= 20.10 and Podman >= 3 serve it.
API_VERSION = "v1.41"
ENGINE_HINT = 'set DOCKER_HOST, or start one with: eval "$(bash scripts/container-engine.sh)"'


def _endpoint() -> str:
    return os.environ.get("DOCKER_HOST") or "the default Docker socket"


@contextlib.asynccontextmanager
async def translate(what: str) -> AsyncIterator[None]:
    """Turn the client library's errors into worldtree's, naming ``what`` was attempted."""
    try:
        yield
    except aiodocker.DockerError as exc:
        if exc.status == 900:  # aiodocker's code for "cannot connect"
            raise ConnectError(f"{what}: cannot reach the container engine at {_endpoint()}; "
                               f"{ENGINE_HINT}") from None
        raise BackendError(f"{what}: {exc.message or exc}") from None
    except (aiohttp.ClientConnectionError, ConnectionError, FileNotFoundError) as exc:
        raise ConnectError(f"{what}: cannot reach the container engine at {_endpoint()} ({exc}); "
                           f"{ENGINE_HINT}") from None
    except aiohttp.ClientError as exc:
        raise BackendError(f"{what}: container engine API error: {exc}") from None


def tar_files(files: Mapping[str, bytes]) -> bytes:
    """A tar of ``{absolute path: content}`` to extract at ``/`` (directories are implied)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, content in files.items():
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode = len(content), 0o755
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


class Engine:
    """One API client per run. Safe for concurrent use by many steps."""

    def __init__(self) -> None:
        self._docker: aiodocker.Docker | None = None
        self._connect_lock = asyncio.Lock()
        self._image_locks: dict[str, asyncio.Lock] = {}
        self._present: set[str] = set()

    @property
    def connected(self) -> bool:
        return self._docker is not None

    async def client(self) -> aiodocker.Docker:
        """The shared client. No request is made here: the first real call reports an unreachable
        engine (as ConnectError). The API version is pinned because negotiating it costs a
        ``/version`` call, which Podman answers slowly (~0.7 s)."""
        async with self._connect_lock:
            if self._docker is None:
                try:
                    self._docker = aiodocker.Docker(api_version=API_VERSION)
                except Exception as exc:  # bad DOCKER_HOST, no socket: aiodocker raises several types
                    detail = f" ({exc})" if str(exc) else ""
                    raise ConnectError(f"no container engine at {_endpoint()}{detail}; {ENGINE_HINT}") from None
            return self._docker

    async def close(self) -> None:
        if self._docker is not None:
            docker, self._docker = self._docker, None
            await docker.close()

    # --- images ------------------------------------------------------------------------------

    async def ensure_image(self, image: str, auth: dict[str, str] | None) -> None:
        """Pull ``image`` unless present (checked once per run); BackendError naming it otherwise."""
        if image in self._present:
            return
        docker = await self.client()
        async with self._image_locks.setdefault(image, asyncio.Lock()):
            if image in self._present:
                return
            if not await self._has_image(docker, image):
                await self._pull(docker, image, auth)
            self._present.add(image)

    async def _has_image(self, docker: aiodocker.Docker, image: str) -> bool:
        async with translate(f"looking up image {image}"):
            try:
                await docker.images.inspect(image)
            except aiodocker.DockerError as exc:
                if exc.status != 404:
                    raise
                return False
        return True

    async def _pull(self, docker: aiodocker.Docker, image: str, auth: dict[str, str] | None) -> None:
        problem = ""
        try:
            async with translate(f"pulling image {image}"):
                for event in await docker.images.pull(image, auth=auth):
                    problem = str(event.get("error") or problem)
        except BackendError as exc:
            problem = str(exc).split(": ", 1)[-1]
        if problem:
            raise BackendError(f"image {image} is not present and cannot be pulled: {problem}")
        if not await self._has_image(docker, image):
            raise BackendError(f"image {image} is not present and cannot be pulled")

    # --- containers --------------------------------------------------------------------------

    async def create(self, name: str, body: dict[str, Any], files: Mapping[str, bytes] | None = None) -> str:
        docker = await self.client()
        async with translate(f"creating container {name} from {body.get('Image')}"):
            container = await docker.containers.create(body, name=name)
            if files:
                await container.put_archive("/", tar_files(files))
        return str(container.id)

    async def run_attached(self, container_id: str, output: OutputSink,
                           on_started: Callable[[], None] | None = None, needles: list[str] | None = None,
                           paused: Callable[[], bool] | None = None) -> int:
        """Start a created container, stream its output line by line, return its exit code.

        Lines go through the host backend's splitter (``backends.spawn.LineSplitter``): an endless
        line is passed on in pieces of ``LINE_LIMIT``, never cut inside one of ``needles``."""
        docker = await self.client()
        container = docker.containers.container(container_id)
        out = LineSplitter(lambda line: output("stdout", line), needles)
        err = LineSplitter(lambda line: output("stderr", line), needles)
        async with translate("running container"):
            async with container.attach(stdout=True, stderr=True, logs=True) as stream:
                await container.start()
                if on_started:
                    on_started()
                while (msg := await stream.read_out()) is not None:
                    (err if msg.stream == 2 else out).feed(msg.data)
                    await output_room(paused)  # the store is behind: the engine's socket buffer fills
            out.close()
            err.close()
            # Output EOF means the process is gone; inspect is cheaper than /wait (Podman polls).
            state = (await container.show())["State"]
            if state.get("Running") or state.get("Status") in ("created", "configured", "running"):
                return int((await container.wait())["StatusCode"])
            return int(state.get("ExitCode", -1))

    async def start(self, container_id: str) -> None:
        docker = await self.client()
        async with translate("starting container"):
            await docker.containers.container(container_id).start()

    async def inspect(self, container_id: str) -> dict[str, Any]:
        docker = await self.client()
        async with translate("inspecting container"):
            return await docker.containers.container(container_id).show()

    async def logs(self, container_id: str, tail: int = 50) -> list[str]:
        docker = await self.client()
        async with translate("reading container logs"):
            chunks = await docker.containers.container(container_id).log(stdout=True, stderr=True, tail=tail)
        return "".join(chunks).splitlines()

    async def exec_status(self, container_id: str, argv: list[str], timeout: float) -> int:
        """Run ``argv`` in a running container; its exit code (-1 when it did not finish in time)."""
        docker = await self.client()
        async with translate("running a health check"):
            container = docker.containers.container(container_id)
            execution = await container.exec(argv, stdout=True, stderr=True)
            try:
                async with asyncio.timeout(timeout):
                    async with execution.start(detach=False) as stream:
                        while await stream.read_out() is not None:
                            pass
                    for _ in range(50):
                        info = await execution.inspect()
                        if not info.get("Running"):
                            return int(info.get("ExitCode") or 0)
                        await asyncio.sleep(0.02)
            except TimeoutError:
                return -1
        return -1

    async def stop_and_remove(self, container_id: str, grace: float) -> None:
        """SIGTERM, SIGKILL after ``grace`` seconds, then remove. Never raises: used on the way out."""
        docker = await self.client()
        container = docker.containers.container(container_id)
        with contextlib.suppress(aiodocker.DockerError, aiohttp.ClientError, OSError):
            await container.stop(t=max(0, int(grace + 0.999)))
        await self.remove(container_id)

    async def remove(self, container_id: str) -> None:
        """Force-remove; a container already gone is fine. Never raises."""
        if self._docker is None:
            return
        with contextlib.suppress(aiodocker.DockerError, aiohttp.ClientError, OSError):
            await self._docker.containers.container(container_id).delete(force=True, v=True)

    async def list_containers(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        docker = await self.client()
        async with translate("listing containers"):
            found = await docker.containers.list(
                all=1, filters=json.dumps({"label": [f"{k}={v}" for k, v in labels.items()]}))
        return [c._container for c in found]

    # --- networks ----------------------------------------------------------------------------

    async def ensure_network(self, name: str, labels: Mapping[str, str]) -> None:
        docker = await self.client()
        async with translate(f"creating network {name}"):
            try:
                await docker.networks.get(name)
            except aiodocker.DockerError as exc:
                if exc.status != 404:
                    raise
                await docker.networks.create({"Name": name, "Labels": dict(labels), "CheckDuplicate": True})

    async def connect(self, network: str, container_id: str, aliases: list[str]) -> None:
        docker = await self.client()
        async with translate(f"connecting a container to network {network}"):
            net = await docker.networks.get(network)
            await net.connect({"Container": container_id, "EndpointConfig": {"Aliases": aliases}})

    async def remove_networks(self, labels: Mapping[str, str]) -> None:
        """Remove the networks carrying ``labels``, disconnecting any container still on them."""
        if self._docker is None:
            return
        docker = self._docker
        with contextlib.suppress(aiodocker.DockerError, aiohttp.ClientError, OSError):
            nets = await docker.networks.list(filters={"label": [f"{k}={v}" for k, v in labels.items()]})
            for info in nets:
                net = await docker.networks.get(info["Id"])
                details = await net.show()
                for cid in (details.get("Containers") or {}):
                    with contextlib.suppress(aiodocker.DockerError):
                        await net.disconnect({"Container": cid, "Force": True})
                with contextlib.suppress(aiodocker.DockerError):
                    await net.delete()
