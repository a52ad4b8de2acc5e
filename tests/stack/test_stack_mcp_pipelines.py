"""worldtree mcp's pipeline tools through the SDK's own client: locally over stdio, and over
streamable HTTP against a real `worldtree server` process (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from worldtree.testing.stores import pg_unavailable_reason, store_url

pytestmark = pytest.mark.slow

GOOD = """name: demo
stages:
  - name: build
    jobs:
      - name: main
        steps:
          - name: hello
            command: echo "hello from $PIPELINE_NAME"
"""
FAILING = """name: broken
stages:
  - name: build
    jobs:
      - name: compile
        steps:
          - name: cc
            command: 'echo "cc: missing.h not found" >&2; exit 3'
      - name: package
        needs: [compile]
        steps:
          - name: tar
            command: echo never
"""
BAD = "name: x\nstages:\n  - name: s\n    jobs: 5\n"
FINAL = ("succeeded", "failed", "cancelled", "timed_out", "error")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORLDTREE_")}
    env.update(extra)
    return env


def _data(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    data = result.structured_content
    assert isinstance(data, dict)
    return data.get("result", data) if set(data) == {"result"} else data


def _text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


async def _until_finished(client: Client, run_id: str, timeout: float = 60) -> tuple[str, list[dict[str, Any]]]:
    """Follow runs.logs as an assistant would: offset = next_offset until finished (bounded)."""
    lines: list[dict[str, Any]] = []
    offset = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = _data(await client.call_tool("runs.logs", {"run_id": run_id, "offset": offset}))
        lines += page["items"]
        offset = page["next_offset"]
        if page["finished"]:
            rest = _data(await client.call_tool("runs.logs", {"run_id": run_id, "offset": offset}))
            return page["state"], lines + rest["items"]
        await asyncio.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish within {timeout} s")


async def _exercise(client: Client) -> None:
    """The same conversation against either backend."""
    names = {t.name for t in (await client.list_tools()).tools}
    assert {"pipeline.validate", "runs.submit", "runs.list", "runs.get", "runs.logs", "runs.cancel", "runs.retry",
            "jobs.explain", "stackflow.validate"} <= names

    ok = _data(await client.call_tool("pipeline.validate", {"document": GOOD}))
    assert ok["ok"] is True and ok["nodes"] == ["build/main/hello"]
    bad = _data(await client.call_tool("pipeline.validate", {"document": BAD}))
    assert bad["ok"] is False
    assert bad["errors"][0]["line"] == 4 and bad["errors"][0]["file"] == "pipeline.yaml", bad

    refused = await client.call_tool("runs.submit", {"document": BAD})
    assert refused.is_error and "pipeline.yaml:4:" in _text(refused)

    run_id = _data(await client.call_tool("runs.submit", {"document": GOOD}))["id"]
    state, lines = await _until_finished(client, run_id)
    assert state == "succeeded"
    assert [line["line"] for line in lines] == ["hello from demo"]
    got = _data(await client.call_tool("runs.get", {"run_id": run_id}))
    assert [(n["path"], n["state"]) for n in got["nodes"]] == [("build/main/hello", "succeeded")]
    listed = _data(await client.call_tool("runs.list", {"pipeline": "demo"}))
    assert [r["id"] for r in listed["items"]] == [run_id]

    retry_refused = await client.call_tool("runs.retry", {"run_id": run_id})
    assert retry_refused.is_error and "succeeded" in _text(retry_refused)

    failed_id = _data(await client.call_tool("runs.submit", {"document": FAILING}))["id"]
    state, _lines = await _until_finished(client, failed_id)
    assert state == "failed"
    why = _data(await client.call_tool("jobs.explain", {"run_id": failed_id}))
    by_path = {j["path"]: j for j in why["jobs"]}
    assert by_path["build/compile/cc"]["exit_code"] == 3
    assert "exited with code 3" in by_path["build/compile/cc"]["why"]
    assert by_path["build/compile/cc"]["log_tail"] == ["cc: missing.h not found"]
    assert "a job it needs did not succeed" in by_path["build/package/tar"]["why"]
    assert why["summary"].startswith(f"run {failed_id} is failed; build/compile/cc")
    retried = _data(await client.call_tool("runs.retry", {"run_id": failed_id}))
    assert retried["state"] == "queued"

    # bad arguments: JSON-RPC errors (invalid params), and the server keeps serving
    for tool, args in (("runs.get", {"run_id": "nope"}), ("runs.logs", {"run_id": run_id, "limit": 0}),
                       ("runs.list", {"state": "sleepy"}), ("jobs.explain", {"run_id": run_id, "job": "zz"})):
        with pytest.raises(MCPError) as caught:
            await client.call_tool(tool, args)
        assert caught.value.code == -32602, (tool, caught.value)
    assert (await client.call_tool("runs.get", {"run_id": 5})).is_error  # wrong type: the SDK's own check
    assert _data(await client.call_tool("runs.get", {"run_id": run_id}))["state"] == "succeeded"


async def test_pipeline_tools_locally_over_stdio(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'local.db'}"
    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "worldtree.cli.main", "--store", store, "mcp", "--allow-local-runs"],
                                   env=_env(), cwd=str(tmp_path))
    async with Client(params) as client:
        await _exercise(client)
    # the runs are in the store the CLI reads
    shown = subprocess.run([sys.executable, "-m", "worldtree.cli.main", "--store", store, "runs"], cwd=tmp_path,
                           env=_env(), capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "demo" in shown.stdout and "broken" in shown.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], ok: tuple[int, ...], log: Path | None = None) -> None:
    for _ in range(300):
        assert proc.poll() is None, f"exited {proc.returncode}: {log.read_text() if log else ''}"
        try:
            if httpx.get(url, timeout=2).status_code in ok:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not come up in 30 s")


@pytest.fixture(params=["sqlite", "postgres"])
def server_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A real `worldtree server` process on a fresh store."""
    if request.param == "postgres":
        reason = pg_unavailable_reason()
        if reason:
            pytest.skip(f"!!! PostgreSQL tests skipped: {reason}")
    with store_url(request.param, tmp_path) as store:
        port = _free_port()
        with open(tmp_path / "server.log", "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "worldtree.cli.main", "server", "--port", str(port),
                                     "--store", store, "--data-dir", str(tmp_path / "data"), "--executors", "1"],
                                    env=_env(), stdout=log, stderr=log)
        try:
            _wait_http(f"http://127.0.0.1:{port}/readyz", proc, (200,), tmp_path / "server.log")
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=20)


async def test_pipeline_tools_over_http_against_a_server(tmp_path: Path, server_url: str) -> None:
    token = "mcp-token-0123456789abcdef"
    port = _free_port()
    mcp_dir = tmp_path / "mcp"
    mcp_dir.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "worldtree.cli.main", "mcp", "--http", f"127.0.0.1:{port}",
                             "--server", server_url], cwd=mcp_dir, env=_env(WORLDTREE_MCP_TOKEN=token),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        _wait_http(url, proc, (401,))
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http_client, \
                Client(streamable_http_client(url, http_client=http_client)) as client:
            await _exercise(client)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    # the runs live on the server (its REST API shows them), not in a store of the MCP process
    runs = httpx.get(f"{server_url}/api/v1/runs", timeout=10).json()
    assert sorted(r["pipeline"] for r in runs["items"]) == ["broken", "demo"]
    assert not (mcp_dir / ".worldtree").exists()


async def test_unreachable_server_is_a_tool_error(tmp_path: Path) -> None:
    params = StdioServerParameters(command=sys.executable, args=["-m", "worldtree.cli.main", "mcp", "--server",
                                                                 f"http://127.0.0.1:{_free_port()}"],
                                   env=_env(), cwd=str(tmp_path))
    async with Client(params) as client:
        result = await client.call_tool("runs.list", {})
        assert result.is_error and "cannot reach" in _text(result)
        assert _data(await client.call_tool("pipeline.validate", {"document": GOOD}))["ok"] is True


def test_explain_a_queued_job_asks_which_agents_could_take_it(tmp_path: Path) -> None:
    from worldtree.app.local_runs import LocalRuns
    from worldtree.mcp.pipelines import explain_run
    from worldtree.store import open_store

    runs = LocalRuns(open_store(f"sqlite:///{tmp_path / 's.db'}"), tmp_path, executors=0)  # nobody claims it
    try:
        run_id = runs.submit(GOOD)["id"]
        why = explain_run(runs, run_id, "build/main")
        assert why["summary"] == f"run {run_id} is queued: no executor or agent has taken it yet"
        (pending,) = why["pending"]
        assert pending["job_id"] == f"{run_id}:build.main"
        assert pending["agents"] == [] and pending["summary"], pending
    finally:
        runs.close()


async def test_local_runs_need_the_operators_flag(tmp_path: Path) -> None:
    params = StdioServerParameters(command=sys.executable, args=["-m", "worldtree.cli.main", "--store",
                                                                 f"sqlite:///{tmp_path / 's.db'}", "mcp"],
                                   env=_env(), cwd=str(tmp_path))
    async with Client(params) as client:
        refused = await client.call_tool("runs.submit", {"document": GOOD})
        assert refused.is_error and "--allow-local-runs" in _text(refused)
        assert _data(await client.call_tool("runs.list", {}))["total"] == 0  # reading is fine
