"""``worldtree server --events nats://…``: deliveries travel on JetStream to a durable pull consumer.

Needs the NATS server (JetStream on) at 127.0.0.1:4222 (``$WORLDTREE_TEST_NATS_URL``); skipped
loudly without it. Each test uses its own stream and deletes it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from gitops_fakes import StatusHost, github_headers, github_push, make_repo
from test_gitops_e2e import CI, SECRET, TOKEN, _delivery
from tests.server.conftest import Servers

NATS_URL = os.environ.get("WORLDTREE_TEST_NATS_URL", "nats://127.0.0.1:4222")


async def _stream(name: str, delete: bool = False) -> Any:
    import nats

    nc = await nats.connect(NATS_URL, connect_timeout=2, max_reconnect_attempts=0)
    try:
        js = nc.jetstream()
        if delete:
            await js.delete_stream(name)
            return None
        return (await js.stream_info(name), await js.consumer_info(name, f"{name}-generator"))
    finally:
        await nc.close()


@pytest.fixture
def stream() -> Any:
    name = f"WT_TEST_{secrets.token_hex(4).upper()}"
    try:
        asyncio.run(_stream(name))
    except Exception as exc:
        if "not found" not in str(exc).lower():
            pytest.skip(f"!!! NATS JetStream tests skipped: no NATS at {NATS_URL} ({type(exc).__name__}: {exc})")
    yield name
    try:
        asyncio.run(_stream(name, delete=True))
    except Exception:
        pass


@pytest.mark.slow
def test_deliveries_go_through_jetstream_to_one_of_two_replicas(servers: Servers, tmp_path: Path,
                                                                 status_host: StatusHost, stream: str) -> None:
    bare, sha = make_repo(tmp_path, {"ci.yaml": CI, "hello.txt": "hi\n"})
    args = ["--events", f"{NATS_URL}?stream={stream}"]
    first, second = servers(args=args), servers(args=args)
    response = first.post("/api/v1/repos", json={
        "name": "acme/app", "provider": "github", "clone_url": f"file://{bare}", "webhook_secret": SECRET,
        "status_token": TOKEN, "api_url": status_host.url})
    assert response.status_code == 201, response.text
    body = github_push("acme/app", f"file://{bare}", sha)
    for number in range(3):
        target = (first, second)[number % 2]
        assert target.post("/api/v1/webhooks/github", content=body,
                           headers=github_headers(SECRET, body, f"n-{number}")).status_code == 202
    runs = [_delivery(first, f"n-{number}", timeout=20)["run_id"] for number in range(3)]
    assert len(set(runs)) == 3 and all(runs)
    for run_id in runs:
        assert first.wait(run_id)["state"] == "succeeded"
    info, consumer = asyncio.run(_stream(stream))
    assert info.state.messages == 3  # every delivery went on the stream
    deadline = time.monotonic() + 10
    while consumer.num_ack_pending or consumer.num_pending:
        assert time.monotonic() < deadline, consumer
        time.sleep(0.2)
        info, consumer = asyncio.run(_stream(stream))
    assert consumer.delivered.consumer_seq >= 3  # pulled by the durable consumer, and acked


def test_an_unreachable_nats_stops_the_server_with_a_message(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORLDTREE_")}
    proc = subprocess.run([sys.executable, "-m", "worldtree.cli.main", "server", "--port", "0", "--data-dir",
                           str(tmp_path), "--executors", "0", "--events", "nats://127.0.0.1:1"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "error: --events nats://127.0.0.1:1: cannot use NATS JetStream" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
