"""DockerBackend against a real Docker Engine API (podman's), driven with StepRequest/RunContext."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from pathlib import Path

import aiodocker
import pytest
from docker_support import BUSYBOX, Captured, leftovers, make_ctx, make_node, request

from worldtree.backends.docker.backend import DockerBackend
from worldtree.errors import BackendError

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker_host")]


async def run_steps(ctx, *reqs):
    backend = DockerBackend(ctx)
    outs = [Captured() for _ in reqs]
    try:
        codes = [await backend.execute(r, o) for r, o in zip(reqs, outs, strict=True)]
    finally:
        await backend.close()
    assert await leftovers(ctx.run_id) == {"containers": [], "networks": []}
    return codes, outs


async def test_exit_code_streams_and_workspace(tmp_path: Path) -> None:
    write = make_node("write", "mkdir -p sub && echo shared > sub/file && echo out && echo err >&2 && exit 3")
    read = make_node("read", "cat file; pwd")
    ctx = make_ctx(tmp_path, [write, read])
    codes, (w, r) = await run_steps(ctx, request(write, ctx), request(read, ctx, workdir=str(tmp_path / "sub")))
    assert codes == [3, 0]
    assert w.out("stdout") == ["out"] and w.out("stderr") == ["err"]
    assert r.out() == ["shared", str(tmp_path / "sub")]
    assert (tmp_path / "sub" / "file").read_text() == "shared\n"


async def test_set_e_and_shell(tmp_path: Path) -> None:
    node = make_node("fails-early", "false; echo not reached")
    ctx = make_ctx(tmp_path, [node])
    codes, (out,) = await run_steps(ctx, request(node, ctx))
    assert codes == [1] and out.out() == []


async def test_env_is_the_pipelines_plus_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WT_TEST_ALLOWED", "yes")
    monkeypatch.setenv("WT_TEST_HIDDEN", "no")
    node = make_node("env", 'echo "$A|$WT_TEST_ALLOWED|${WT_TEST_HIDDEN:-unset}|$WORLDTREE_RUN_ID"', env={"A": "1"})
    ctx = make_ctx(tmp_path, [node], allow_env=["WT_TEST_ALLOW*"])
    _, (out,) = await run_steps(ctx, request(node, ctx))
    assert out.out() == [f"1|yes|unset|{ctx.run_id}"]
    everything = make_ctx(tmp_path, [node], allow_all_env=True)
    _, (out,) = await run_steps(everything, request(node, everything))
    assert out.out() == [f"1|yes|no|{everything.run_id}"]


async def test_all_env_still_withholds_worldtrees_own_variables(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """``--allow-all-env`` passes the host's environment, but never ``WORLDTREE_STORE`` (a DB password)."""
    monkeypatch.setenv("WORLDTREE_STORE", "postgresql+psycopg://u:hunter2@db/x")
    monkeypatch.setenv("WT_TEST_VISIBLE", "yes")
    node = make_node("env", 'echo "${WORLDTREE_STORE:-unset}|$WT_TEST_VISIBLE"')
    everything = make_ctx(tmp_path, [node], allow_all_env=True)
    _, (out,) = await run_steps(everything, request(node, everything))
    assert out.out() == ["unset|yes"]


async def test_partial_lines_and_many_lines(tmp_path: Path) -> None:
    node = make_node("lines", "seq 1 2000; printf tail")
    ctx = make_ctx(tmp_path, [node])
    _, (out,) = await run_steps(ctx, request(node, ctx))
    assert out.out() == [str(i) for i in range(1, 2001)] + ["tail"]


@pytest.mark.slow
async def test_cancel_stops_and_removes_the_container(tmp_path: Path) -> None:
    node = make_node("sleepy", "echo started; sleep 60")
    ctx = make_ctx(tmp_path, [node], grace_seconds=2)
    backend = DockerBackend(ctx)
    out = Captured()
    task = asyncio.create_task(backend.execute(request(node, ctx), out))
    for _ in range(100):
        if out.out():
            break
        await asyncio.sleep(0.1)
    assert (await leftovers(ctx.run_id))["containers"], "the step container should be running"
    began = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - began < 10  # SIGTERM reaches sh through the init: no full grace wait
    assert await leftovers(ctx.run_id) == {"containers": [], "networks": []}, "gone before close()"
    await backend.close()


async def test_timeout_via_wait_for_cleans_up(tmp_path: Path) -> None:
    node = make_node("slow", "sleep 30")
    ctx = make_ctx(tmp_path, [node], grace_seconds=1)
    backend = DockerBackend(ctx)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(backend.execute(request(node, ctx), Captured()), 2)
    await backend.close()
    assert await leftovers(ctx.run_id) == {"containers": [], "networks": []}


async def test_missing_image_names_it(tmp_path: Path) -> None:
    node = make_node("nope", "true", image="registry.invalid/worldtree/nope:1")
    ctx = make_ctx(tmp_path, [node])
    backend = DockerBackend(ctx)
    with pytest.raises(BackendError, match=r"registry\.invalid/worldtree/nope:1"):
        await backend.execute(request(node, ctx), Captured())
    await backend.close()


async def test_plugin_settings_reach_the_entrypoint(tmp_path: Path) -> None:
    node = make_node("checkout", "/bin/env", image=None, plugin={
        "image": BUSYBOX, "entrypoint": "/bin/env",
        "settings": {"username": "test", "token": "${TOKEN}", "repository": "https://github.com/go-idp/pipeline"}})
    ctx = make_ctx(tmp_path, [node])
    codes, (out,) = await run_steps(ctx, request(node, ctx, env={"TOKEN": "t0k"}))
    assert codes == [0]
    assert {"PIPELINE_PLUGIN_SETTINGS_USERNAME=test", "PIPELINE_PLUGIN_SETTINGS_TOKEN=t0k",
            "PIPELINE_PLUGIN_SETTINGS_REPOSITORY=https://github.com/go-idp/pipeline"} <= set(out.out())


async def test_language_selects_the_configured_image(tmp_path: Path) -> None:
    node = make_node("js", "echo script ran", image=None, language={"name": "node", "version": "16"})
    py = make_node("py", "echo py ran", image=None, language={"name": "python", "version": "3.12"})
    ctx = make_ctx(tmp_path, [node, py])
    codes, (js_out, py_out) = await run_steps(ctx, request(node, ctx), request(py, ctx))
    assert codes == [0, 0]
    assert js_out.out() == ["stand-in node 16", "script ran"]
    assert py_out.out() == ["stand-in python 3.12", "py ran"]


async def test_runner_size_sets_limits(tmp_path: Path) -> None:
    limit = "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
    node = make_node("sized", limit, runner="tiny")
    ctx = make_ctx(tmp_path, [node], config={"runners": {"tiny": {"cpu": "500m", "memory": "64Mi"}}})
    codes, (out,) = await run_steps(ctx, request(node, ctx))
    assert codes == [0] and out.out() == [str(64 * 1024 * 1024)]


COMPOSE = """
services:
  web:
    image: docker.io/library/busybox:latest
    command: ["sh", "-c", "echo $$GREETING > /tmp/index.html && httpd -f -p 8080 -h /tmp"]
    environment: {GREETING: "${GREETING}"}
    ports: ["127.0.0.1::8080"]
    healthcheck: {test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/index.html"], interval: 0.2s}
    depends_on: {cache: {condition: service_healthy}}
  cache:
    image: docker.io/library/busybox:latest
    command: sleep 600
    healthcheck: {test: "true", interval: 0.2s}
"""


async def test_compose_service_reached_by_name_and_torn_down(tmp_path: Path) -> None:
    up = make_node("up", "service", image=None,
                   service={"type": "docker-compose", "name": "stack", "version": "v1", "config": COMPOSE})
    use = make_node("use", "wget -q -O- http://web:8080/index.html")
    ctx = make_ctx(tmp_path, [up, use])
    backend = DockerBackend(ctx)
    out_up, out_use = Captured(), Captured()
    try:
        assert await backend.execute(request(up, ctx, env={"GREETING": "hi-from-web"}), out_up) == 0
        assert "service web: healthy" in out_up.out()
        assert await backend.execute(request(use, ctx), out_use) == 0
        assert out_use.out() == ["hi-from-web"]
        # host steps reach services through published ports
        docker = aiodocker.Docker()
        try:
            found = await docker.containers.list(filters='{"label": ["worldtree.compose.service=web", '
                                                 f'"worldtree.run_id={ctx.run_id}"]}}')
            info = await found[0].show()
        finally:
            await docker.close()
        port = info["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html").read())
        assert body == b"hi-from-web\n"
    finally:
        await backend.close()
    assert await leftovers(ctx.run_id) == {"containers": [], "networks": []}


async def test_failing_service_is_a_step_failure(tmp_path: Path) -> None:
    up = make_node("up", "service", image=None, service={
        "name": "broken", "config": "services: {x: {image: docker.io/library/busybox:latest, "
                                    "command: ['sh', '-c', 'echo dying; exit 4']}}"})
    ctx = make_ctx(tmp_path, [up])
    backend = DockerBackend(ctx)
    out = Captured()
    try:
        await asyncio.sleep(0)
        code = await backend.execute(request(up, ctx), out)
    finally:
        await backend.close()
    assert code == 1
    assert any("exited with code 4" in line for line in out.out("stderr"))


async def test_unsupported_service_types(tmp_path: Path) -> None:
    up = make_node("up", "service", image=None, service={"type": "docker-swarm", "name": "s", "config": "x"})
    ctx = make_ctx(tmp_path, [up])
    backend = DockerBackend(ctx)
    with pytest.raises(BackendError, match="not supported by this backend"):
        await backend.execute(request(up, ctx), Captured())
    await backend.close()


async def test_kept_service_is_idempotent_by_version(tmp_path: Path) -> None:
    doc = "services: {app: {image: docker.io/library/busybox:latest, command: sleep 600}}"
    spec = {"name": f"keep-{tmp_path.name[-8:]}", "version": "v1", "config": doc, "keep": True}

    async def apply(version: str) -> tuple[list[str], list[str]]:
        up = make_node("up", "service", image=None, service={**spec, "version": version})
        probe = make_node("probe", "nslookup app >/dev/null && echo reachable")
        ctx = make_ctx(tmp_path, [up, probe])
        codes, (out, probe_out) = await run_steps(ctx, request(up, ctx), request(probe, ctx))
        assert codes == [0, 0]
        return out.out(), probe_out.out()

    docker = aiodocker.Docker()
    label = f'{{"label": ["worldtree.service={spec["name"]}"]}}'
    try:
        _, probe = await apply("v1")
        assert probe == ["reachable"]
        ids = [c.id for c in await docker.containers.list(all=1, filters=label)]
        again, _ = await apply("v1")
        assert any("unchanged" in line for line in again)
        assert [c.id for c in await docker.containers.list(all=1, filters=label)] == ids
        upgraded, _ = await apply("v2")
        assert any("replacing version v1" in line for line in upgraded)
        now = await docker.containers.list(all=1, filters=label)
        assert len(now) == 1 and now[0].id not in ids
        assert now[0]._container["Labels"]["worldtree.service.version"] == "v2"
    finally:
        for c in await docker.containers.list(all=1, filters=label):
            await c.delete(force=True)
        for net in await docker.networks.list(filters={"label": [f"worldtree.service={spec['name']}"]}):
            await (await docker.networks.get(net["Id"])).delete()
        await docker.close()


async def test_close_is_idempotent_and_safe_without_execute(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, [make_node()])
    never_used = DockerBackend(ctx)
    await never_used.close()
    await never_used.close()
    assert not never_used._engine.connected  # close made no request of its own
    failed = DockerBackend(ctx)
    with pytest.raises(BackendError):
        await failed.execute(request(make_node("x", image="localhost/worldtree-no-such-image:1"), ctx), Captured())
    await failed.close()
    await failed.close()
    assert not failed._engine.connected
    assert await leftovers(ctx.run_id) == {"containers": [], "networks": []}


async def test_concurrent_steps_share_one_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each step waits (up to 60 s) until all six have started: run one after another, the
    first would give up and fail. Every step uses the one API client of the run."""
    made: list[object] = []

    class Counted(aiodocker.Docker):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            made.append(self)

    monkeypatch.setattr("worldtree.backends.docker.client.aiodocker.Docker", Counted)
    wait_all = "touch started-{i}; n=0; while [ $(ls started-* | wc -l) -lt 6 ]; do " \
               "n=$((n+1)); [ $n -gt 600 ] && exit 9; sleep 0.1; done; echo {i} > f{i}"
    nodes = [make_node(f"n{i}", wait_all.format(i=i)) for i in range(6)]
    ctx = make_ctx(tmp_path, nodes)
    backend = DockerBackend(ctx)
    try:
        codes = await asyncio.gather(*(backend.execute(request(n, ctx), Captured()) for n in nodes))
    finally:
        await backend.close()
    assert codes == [0] * 6 and sorted(p.name for p in tmp_path.glob("f*")) == [f"f{i}" for i in range(6)]
    assert len(made) == 1
    assert await leftovers(ctx.run_id) == {"containers": [], "networks": []}


async def test_unreachable_engine_is_a_connect_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from worldtree.errors import ConnectError

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")
    node = make_node()
    ctx = make_ctx(tmp_path, [node])
    backend = DockerBackend(ctx)
    with pytest.raises(ConnectError, match=r"container-engine\.sh"):
        await backend.execute(request(node, ctx), Captured())
    await backend.close()


@pytest.mark.slow
async def test_cancelled_service_step_removes_its_services_at_once(tmp_path: Path) -> None:
    doc = ("services: {idle: {image: docker.io/library/busybox:latest, command: sleep 600, "
           "healthcheck: {test: 'false', interval: 0.2s, retries: 1000}}}")
    up = make_node("up", "service", image=None, service={"name": "never-healthy", "config": doc})
    ctx = make_ctx(tmp_path, [up], grace_seconds=1)
    backend = DockerBackend(ctx)
    out = Captured()
    task = asyncio.create_task(backend.execute(request(up, ctx), out))
    for _ in range(100):
        if any("started" in line for line in out.out()):
            break
        await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await leftovers(ctx.run_id))["containers"] == []
    await backend.close()
    assert await leftovers(ctx.run_id) == {"containers": [], "networks": []}
