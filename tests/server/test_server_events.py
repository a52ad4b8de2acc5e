"""Event streams: SSE ``/api/v1/runs/{id}/events`` and ``/api/v1/events``, their WebSocket twins,
resume without gap or duplicate, a follower on another replica, and a stalled follower dropped."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from tests.server.conftest import Server, Servers, pipeline
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from worldtree.app import events
from worldtree.server.routes_events import Dropped, EventHub, follow
from worldtree.store import open_store
from worldtree.testing.stores import sqlite_url


def _sse(server: Server, path: str, headers: dict[str, str] | None = None,
         params: dict[str, Any] | None = None) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(event, id, data)`` as the stream sends them (bounded by the read timeout)."""
    with httpx.stream("GET", f"{server.url}{path}", headers=headers or {}, params=params,
                      timeout=httpx.Timeout(10, read=30)) as response:
        assert response.status_code == 200, response.read()
        event, ident, data = "message", "", ""
        for raw in response.iter_lines():
            if raw == "":
                if data:
                    yield event, ident, json.loads(data)
                event, ident, data = "message", "", ""
            elif raw.startswith("event:"):
                event = raw[6:].strip()
            elif raw.startswith("id:"):
                ident = raw[3:].strip()
            elif raw.startswith("data:"):
                data = raw[5:].strip()


def _run_events(server: Server, run_id: str, **kw: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """All of a run's events up to ``end``, and the end's data."""
    seen = []
    for event, ident, data in _sse(server, f"/api/v1/runs/{run_id}/events", **kw):
        if event == "end":
            return seen, data
        assert ident == str(data["id"]) and data["run_id"] == run_id
        seen.append(data)
    raise AssertionError("the stream ended without `end`")


def test_a_run_stream_carries_node_states_in_order_and_ends(servers: Servers) -> None:
    server = servers()
    run_id = server.submit(pipeline(("one", "echo 1"), ("two", "exit 4")))
    seen, end = _run_events(server, run_id)
    assert end == {"state": "failed"}
    ids = [e["id"] for e in seen]
    assert ids == sorted(set(ids))
    kinds = [e["kind"] for e in seen]
    assert kinds[0] == "run.queued" and kinds[1] == "run.started" and kinds[-1] == "run.finished"
    assert seen[-1]["state"] == "failed" and seen[-1]["attempt"] == 1
    states = [(e["node"], e["state"]) for e in seen if e["kind"] == "node.state"]
    for node, final in (("build/main/one", "succeeded"), ("build/main/two", "failed")):
        mine = [s for n, s in states if n == node]
        assert mine[0] == "running" and mine[-1] == final, states
    two = [e for e in seen if e["kind"] == "node.state" and e["node"] == "build/main/two"][-1]
    assert two["exit_code"] == 4
    # deleting the run deletes its events too (its records); the log's other ids stay as they were
    assert httpx.delete(f"{server.url}/api/v1/runs/{run_id}", timeout=30).status_code == 204
    with httpx.stream("GET", f"{server.url}/api/v1/events", params={"after": 0},
                      timeout=httpx.Timeout(10, read=3)) as response:
        left = []
        try:
            for raw in response.iter_lines():
                if raw.startswith("data:"):
                    left.append(json.loads(raw[5:])["run_id"])
        except httpx.ReadTimeout:  # the global stream never ends: what was stored has been sent
            pass
    assert run_id not in left


def test_last_event_id_resumes_without_gap_or_duplicate(servers: Servers) -> None:
    server = servers()
    steps = [(f"s{i}", "true") for i in range(6)]
    run_id = server.submit(pipeline(*steps))
    everything, _ = _run_events(server, run_id)
    assert len(everything) >= 2 + 2 * 6 + 1
    for cut in (1, 5, len(everything) - 1):
        head = everything[:cut]
        tail, end = _run_events(server, run_id, headers={"Last-Event-ID": str(head[-1]["id"])})
        assert head + tail == everything and end == {"state": "succeeded"}
    after, _ = _run_events(server, run_id, params={"after": everything[3]["id"]})
    assert after == everything[4:]
    bad = server.get(f"/api/v1/runs/{run_id}/events", headers={"Last-Event-ID": "x"})
    assert bad.status_code == 400 and "Last-Event-ID" in bad.json()["error"]["message"]
    assert server.get("/api/v1/runs/nope/events").status_code == 404


@pytest.mark.slow
def test_a_follower_on_another_replica_sees_events_live(servers: Servers, tmp_path: Path) -> None:
    worker = servers(executors=1)
    reader = servers(executors=0)  # runs nothing: every event it sends was recorded by the worker
    gate = tmp_path / "gate"
    wait = f"for i in $(seq 300); do [ -f {gate} ] && break; sleep 0.05; done; [ -f {gate} ] || exit 9"
    got: list[dict[str, Any]] = []
    target: list[str] = []

    def watch() -> None:
        for _, _, data in _sse(reader, "/api/v1/events", params={"after": 0}):
            got.append(data)
            if target and data["run_id"] == target[0] and data["kind"] == "run.finished":
                return

    follower = threading.Thread(target=watch, daemon=True)
    follower.start()
    run_id = worker.submit(pipeline(("hold", wait)))
    target.append(run_id)
    deadline = time.monotonic() + 30
    while not any(e["run_id"] == run_id and e["kind"] == "node.state" and e["state"] == "running" for e in got):
        assert time.monotonic() < deadline, got
        time.sleep(0.05)
    gate.touch()  # the step waited for this: the event reached the other replica while it ran
    follower.join(60)
    assert not follower.is_alive()
    assert worker.wait(run_id)["state"] == "succeeded"
    mine = [e["kind"] for e in got if e["run_id"] == run_id]
    assert mine[:2] == ["run.queued", "run.started"] and mine[-1] == "run.finished"
    ids = [e["id"] for e in got]
    assert ids == sorted(set(ids))


def test_websocket_twins(servers: Servers) -> None:
    server = servers()
    run_id = server.submit(pipeline(("say", "echo a; sleep 0.3; echo b >&2; sleep 0.3; echo c")))
    sse, _ = _run_events(server, run_id)
    base = server.url.replace("http://", "ws://")

    def frames(path: str) -> list[dict[str, Any]]:
        out = []
        with connect(base + path, open_timeout=10) as conn:
            for _ in range(1000):
                frame = json.loads(conn.recv(timeout=30))
                out.append(frame)
                if frame["event"] == "end":
                    return out
        raise AssertionError("no end frame")

    got = frames(f"/api/v1/ws/runs/{run_id}/events")
    assert [f["data"] for f in got[:-1]] == sse and got[-1] == {"id": None, "event": "end",
                                                                  "data": {"state": "succeeded"}}
    resumed = frames(f"/api/v1/ws/runs/{run_id}/events?after={sse[2]['id']}")
    assert [f["data"] for f in resumed[:-1]] == sse[3:]
    lines = frames(f"/api/v1/ws/runs/{run_id}/logs")
    assert [(f["data"]["stream"], f["data"]["line"]) for f in lines[:-1]] == [
        ("stdout", "a"), ("stderr", "b"), ("stdout", "c")]
    tail = frames(f"/api/v1/ws/runs/{run_id}/logs?after={lines[0]['id']}")
    assert [f["data"]["line"] for f in tail[:-1]] == ["b", "c"]
    with connect(f"{base}/api/v1/ws/events?after=0", open_timeout=10) as conn:
        first = [json.loads(conn.recv(timeout=30)) for _ in range(len(sse))]
    assert [f["data"] for f in first] == sse
    with connect(f"{base}/api/v1/ws/runs/nope/events", open_timeout=10) as conn:
        assert json.loads(conn.recv(timeout=10))["event"] == "error"
        with pytest.raises(ConnectionClosed) as closed:
            conn.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404


def test_a_stalled_follower_is_dropped_and_the_others_keep_up(tmp_path: Path) -> None:
    store = open_store(sqlite_url(tmp_path))
    center = EventHub(store, queue_size=5)

    async def main() -> tuple[list[int], int, bool]:
        events.emit(store, "run.queued", "r0")
        stalled, brisk = follow(center, None, 0), follow(center, None, 0)
        assert (await stalled.__anext__()).id == (await brisk.__anext__()).id == 1  # both wait on the hub now
        events.emit_many(store, [("run.queued", f"r{i}", {}) for i in range(1, 21)])
        got = []
        with anyio.fail_after(20):
            for _ in range(20):
                got.append((await brisk.__anext__()).id)
        # the stalled one read nothing meanwhile: its queue (5) overflowed and the hub let it go;
        # what it can still read is what was stored when it stalled, then it is told it was dropped
        late, dropped = 0, False
        try:
            with anyio.fail_after(20):
                for _ in range(30):
                    await stalled.__anext__()
                    late += 1
        except Dropped:
            dropped = True
        center.task.cancel()
        return got, late, dropped

    got, late, dropped = anyio.run(main)
    assert got == list(range(2, 22))
    assert dropped and late <= 20
    store.close()
