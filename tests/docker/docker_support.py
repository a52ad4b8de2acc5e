"""Helpers for the container backend tests (imported by conftest and the test modules)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from worldtree.backends.base import RunContext, StepRequest
from worldtree.model.graph import ExecutionGraph, Node, Target

BUSYBOX = "docker.io/library/busybox:latest"


def make_node(name: str = "step", command: str = "true", **target: Any) -> Node:
    target.setdefault("image", BUSYBOX)
    shell = target.pop("shell", "sh")
    env = target.pop("env", {})
    timeout = target.pop("timeout", None)
    return Node(id=f"job/{name}", path=f"job/{name}", name=name, job="job", command=command, shell=shell,
                env=env, timeout=timeout, target=Target(kind="docker", **target))


def make_ctx(workdir: Path, nodes: list[Node], **kwargs: Any) -> RunContext:
    graph = ExecutionGraph(name="t", nodes=nodes)
    return RunContext(run_id=f"test-{uuid.uuid4().hex[:10]}", attempt=1, workdir=str(workdir), graph=graph,
                      **kwargs)


def request(node: Node, ctx: RunContext, env: dict[str, str] | None = None, workdir: str | None = None,
            **kwargs: Any) -> StepRequest:
    return StepRequest(node=node, command=node.command, env={**node.env, **(env or {})},
                       workdir=workdir or ctx.workdir, **kwargs)


class Captured:
    """An OutputSink that keeps lines per stream."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __call__(self, stream: str, line: str) -> None:
        self.lines.append((stream, line))

    def out(self, stream: str = "stdout") -> list[str]:
        return [line for s, line in self.lines if s == stream]


async def leftovers(run_id: str) -> dict[str, list[str]]:
    """Containers and networks that still carry the run's label (checked through the API)."""
    import json

    import aiodocker

    docker = aiodocker.Docker()
    try:
        label = {"label": [f"worldtree.run_id={run_id}"]}
        containers = await docker.containers.list(all=1, filters=json.dumps(label))
        networks = await docker.networks.list(filters=label)
        return {"containers": [c.id for c in containers], "networks": [n["Name"] for n in networks]}
    finally:
        await docker.close()
