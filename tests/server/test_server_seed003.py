"""Seed 003's WebSocket protocol at ``/``: a client written for go-idp/pipeline's server, unchanged.

The frames are that tool's (``{"type": "run", "payload": YAML}`` in; ``stdout``/``stderr``, then
``done`` or ``error`` out), the document is in that tool's serialized form (every field, zero
values, ``state:`` records), and authentication is its HTTP Basic header.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.server.conftest import Servers, pipeline
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

# The seed tool's serialization of a two-step job (see tests/cli/fixtures/seed-tool-serialized.yaml).
SERIALIZED = """name: release
stages:
  - name: build
    jobs:
      - name: compile
        steps:
          - name: make
            command: echo "$GREETING" > out.txt; echo to-stderr >&2
            environment: {}
            workdir: ""
            engine: ""
            image: ""
            image_registry: ""
            image_registry_username: ""
            image_registry_password: ""
            shell: ""
            timeout: 0
            data_dir_inner: ""
            data_dir_outer: ""
            plugin: null
            language: null
            service: null
            state:
              id: 6f1c.0.0.0
              status: succeeded
              started_at: 2026-11-28T10:00:00Z
              succeed_at: 2026-11-28T10:00:01Z
              failed_at: 0001-01-01T00:00:00Z
              error: ""
          - name: check
            command: cat out.txt
            environment: {}
            workdir: ""
            engine: ""
            image: ""
            image_registry: ""
            image_registry_username: ""
            image_registry_password: ""
            shell: bash
            timeout: 0
            data_dir_inner: ""
            data_dir_outer: ""
            plugin: null
            language: null
            service: null
            state: null
        workdir: ""
        image: ""
        image_registry: ""
        image_registry_username: ""
        image_registry_password: ""
        environment: {}
        timeout: 60
        state: null
    workdir: ""
    image: ""
    environment: {}
    timeout: 120
    run_mode: ""
    state: null
workdir: ""
environment:
  GREETING: hello
image: ""
timeout: 600
state:
  id: 6f1c
  status: failed
  started_at: 2026-11-28T10:00:00Z
  succeed_at: 0001-01-01T00:00:00Z
  failed_at: 2026-11-28T10:00:02Z
  error: "step(publish) failed"
pre: ""
post: ""
"""


def _ws(url: str) -> str:
    return url.replace("http://", "ws://") + "/"


def _until_end(conn: ClientConnection) -> list[tuple[str, str]]:
    """Frames as the seed client handles them, up to ``done`` or ``error`` (bounded by recv timeouts)."""
    frames = []
    for _ in range(10_000):
        frame = json.loads(conn.recv(timeout=60))
        assert set(frame) == {"type", "payload"} and isinstance(frame["payload"], str)
        frames.append((frame["type"], frame["payload"]))
        if frame["type"] in ("done", "error"):
            return frames
    raise AssertionError("no done/error frame")


def test_a_seed_client_runs_a_document_in_its_serialized_form(servers: Servers) -> None:
    server = servers()
    with connect(_ws(server.url), open_timeout=10) as conn:
        conn.send(json.dumps({"type": "run", "payload": SERIALIZED}))
        frames = _until_end(conn)
    assert frames[-1] == ("done", "")
    assert ("stdout", "hello\n") in frames and ("stderr", "to-stderr\n") in frames
    # it went through the durable queue: a run like any other, with its nodes recorded
    runs = server.get("/api/v1/runs").json()["items"]
    assert len(runs) == 1 and runs[0]["state"] == "succeeded" and runs[0]["pipeline"] == "release"


def test_failure_and_bad_documents_are_error_frames(servers: Servers) -> None:
    server = servers()
    with connect(_ws(server.url), open_timeout=10) as conn:
        conn.send(json.dumps({"type": "run", "payload": pipeline(("boom", "echo before; exit 3"))}))
        frames = _until_end(conn)
        assert frames[:-1] == [("stdout", "before\n")]
        kind, message = frames[-1]
        assert kind == "error" and "failed" in message and "exit code 3" in message
        conn.send(json.dumps({"type": "run", "payload": "name: x\nstages: 3\n"}))
        kind, message = _until_end(conn)[-1]
        assert kind == "error" and ":2:" in message  # the located diagnostic the CLI prints
        conn.send(json.dumps({"type": "exec", "payload": ""}))
        assert _until_end(conn)[-1] == ("error", "unsupported action type: exec")
    assert len(server.get("/api/v1/runs").json()["items"]) == 1  # nothing stored for the bad ones


def test_a_line_arrives_while_its_step_runs(servers: Servers, tmp_path: Path) -> None:
    server = servers()
    gate = tmp_path / "gate"
    wait = f"echo first; for i in $(seq 300); do [ -f {gate} ] && break; sleep 0.05; done; [ -f {gate} ] || exit 9"
    with connect(_ws(server.url), open_timeout=10) as conn:
        conn.send(json.dumps({"type": "run", "payload": pipeline(("talk", wait + "; echo second"))}))
        assert json.loads(conn.recv(timeout=30)) == {"type": "stdout", "payload": "first\n"}
        gate.touch()
        assert _until_end(conn) == [("stdout", "second\n"), ("done", "")]


def test_closing_the_connection_cancels_the_run(servers: Servers) -> None:
    server = servers()
    with connect(_ws(server.url), open_timeout=10) as conn:
        conn.send(json.dumps({"type": "run", "payload": pipeline(("long", "echo started; sleep 60"))}))
        assert json.loads(conn.recv(timeout=30))["payload"] == "started\n"
    run_id = server.get("/api/v1/runs").json()["items"][0]["id"]
    run = server.wait(run_id, timeout=30)
    assert run["state"] == "cancelled" and "disconnected" in (run["cancel_reason"] or "")


def _token(store: str, role: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORLDTREE_")}
    proc = subprocess.run([sys.executable, "-m", "worldtree.cli.main", "token", "create", "--role", role,
                           "--store", store], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.slow
def test_basic_auth_with_the_token_as_password(servers: Servers) -> None:
    maintainer, viewer = _token(servers.store, "maintainer"), _token(servers.store, "viewer")
    server = servers(args=["--auth"])

    def basic(token: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"seed:{token}".encode()).decode()}

    for headers in ({}, basic("wt_wrong"), basic(viewer)):  # viewers read; running needs a maintainer
        with pytest.raises(InvalidStatus) as refused:
            connect(_ws(server.url), additional_headers=headers, open_timeout=10)
        assert refused.value.response.status_code == 403
    started = time.monotonic()
    with connect(_ws(server.url), additional_headers=basic(maintainer), open_timeout=10) as conn:
        conn.send(json.dumps({"type": "run", "payload": pipeline(("hi", "echo hi"))}))
        assert _until_end(conn) == [("stdout", "hi\n"), ("done", "")]
    assert time.monotonic() - started < 60
    with connect(_ws(server.url), additional_headers={"Authorization": f"Bearer {maintainer}"},
                 open_timeout=10) as conn:
        conn.send(json.dumps({"type": "run", "payload": pipeline(("hi", "echo again"))}))
        assert _until_end(conn)[-1] == ("done", "")
    # the twins under /api/v1/ws take the same header; a viewer may follow
    events = server.url.replace("http://", "ws://") + "/api/v1/ws/events?after=0"
    with pytest.raises(InvalidStatus) as refused:
        connect(events, open_timeout=10)
    assert refused.value.response.status_code == 403
    with connect(events, additional_headers=basic(viewer), open_timeout=10) as conn:
        assert json.loads(conn.recv(timeout=30))["event"] == "run.queued"
