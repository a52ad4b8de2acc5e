"""In a container a step runs as on the host (tests/command_cases.py), an endless line costs
LINE_LIMIT of memory, and plugins/services get the variables seed 003 plugins read."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import sys
from pathlib import Path

import pytest
from docker_support import BUSYBOX, Captured, leftovers, make_ctx, make_node, request

from worldtree.backends.docker.backend import DockerBackend
from worldtree.backends.spawn import LINE_LIMIT

sys.path.insert(0, str(Path(__file__).parents[1]))
from command_cases import CASES, EXPECTED

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker_host")]


@pytest.mark.parametrize("case", [c for c in CASES if c.needs is None], ids=lambda c: c.name)
async def test_cases_match_the_host(tmp_path: Path, case) -> None:  # type: ignore[no-untyped-def]
    node = make_node("case", case.command, shell=case.shell)
    ctx = make_ctx(tmp_path, [node])
    backend = DockerBackend(ctx)
    out = Captured()
    try:
        code = await backend.execute(request(node, ctx, env=dict(case.env)), out)
    finally:
        await backend.close()
    assert (code, out.out(), out.out("stderr")) == EXPECTED[case.name]


async def test_an_endless_line_arrives_in_pieces_while_it_runs(tmp_path: Path) -> None:
    node = make_node("endless", "yes x | tr -d '\\n'")
    ctx = make_ctx(tmp_path, [node])
    backend = DockerBackend(ctx)
    out = Captured()
    step = asyncio.ensure_future(backend.execute(request(node, ctx), out))
    try:
        for _ in range(600):  # the line never ends: pieces must come while the step runs
            if len(out.lines) >= 3 or step.done():
                break
            await asyncio.sleep(0.05)
        assert not step.done() and len(out.lines) >= 3
    finally:
        step.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await step
        await backend.close()
    assert all(len(line) == LINE_LIMIT and set(line) == {"x"} for _, line in out.lines[:3])
    assert await leftovers(ctx.run_id) == {"containers": [], "networks": []}


async def test_plugin_gets_its_command_base64(tmp_path: Path) -> None:
    node = make_node("plugin", "echo 'hi there'", image=None, plugin={"image": BUSYBOX, "entrypoint": "/bin/env"})
    ctx = make_ctx(tmp_path, [node])
    backend = DockerBackend(ctx)
    out = Captured()
    try:
        assert await backend.execute(request(node, ctx), out) == 0
    finally:
        await backend.close()
    encoded = base64.b64encode(b"echo 'hi there'").decode()
    assert f"PIPELINE_PLUGIN_COMMAND={encoded}" in out.out()


async def test_service_containers_get_the_service_variables(tmp_path: Path) -> None:
    compose = (f"services:\n  svc:\n    image: {BUSYBOX}\n"
               "    command: [sh, -c, 'env | grep ^PIPELINE_SERVICE_ | sort; "
               "echo image=${PIPELINE_SERVICE_VERSION}']\n")
    node = make_node("svc", "", image=None, service={"type": "docker-compose", "name": "stack", "version": "v7",
                                                    "config": compose})
    ctx = make_ctx(tmp_path, [node])
    backend = DockerBackend(ctx)
    try:
        assert await backend.execute(request(node, ctx), Captured()) == 0
        import aiodocker

        docker = aiodocker.Docker()
        try:
            found = await docker.containers.list(all=1, filters='{"label": ["worldtree.service=stack"]}')
            logs = "".join(await found[0].log(stdout=True))
        finally:
            await docker.close()
    finally:
        await backend.close()
    assert logs.splitlines() == ["PIPELINE_SERVICE_NAME=stack", "PIPELINE_SERVICE_TYPE=docker-compose",
                                 "PIPELINE_SERVICE_VERSION=v7", "image=v7"]
