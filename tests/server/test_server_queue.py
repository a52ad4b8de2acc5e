"""Queue limits on real servers: ``--max-concurrent`` across two replicas, concurrency groups
(queue behind, cancel in progress), and ``GET /api/v1/queue`` saying why a run waits."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from tests.server.conftest import Server, Servers, pipeline


def _grouped(name: str, command: str, group: str, cancel: bool = False) -> str:
    """A one-step pipeline in concurrency group ``group``."""
    head = f"concurrency: {{group: {json.dumps(group)}, cancel_in_progress: {str(cancel).lower()}}}\n"
    return head + pipeline(("step", command), name=name)


def _waiting(server: Server, run_id: str, timeout: float = 30) -> str:
    """The ``waiting_for`` of ``run_id`` once GET /queue lists it as queued."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queue = server.get("/api/v1/queue").json()
        for item in queue["queued"]:
            if item["id"] == run_id:
                return str(item["waiting_for"])
        time.sleep(0.1)
    raise AssertionError(f"{run_id} never showed as queued: {server.get('/api/v1/queue').json()}")


@pytest.mark.slow
def test_max_concurrent_holds_across_replicas(servers: Servers, tmp_path: Path) -> None:
    one = servers(executors=2, args=["--max-concurrent", "2"])
    two = servers(executors=2, args=["--max-concurrent", "2"])
    running, ledger = tmp_path / "running", tmp_path / "ledger"
    running.mkdir()
    # each step counts the steps running at this moment (its own marker included), holds, then leaves
    step = (f"touch {running}/$$; ls {running} | wc -l >> {ledger}; sleep 1.2; rm {running}/$$")
    ids = [(one if i % 2 else two).submit(pipeline(("hold", step), name=f"p{i}")) for i in range(6)]
    reason = _waiting(one, ids[-1])
    assert reason in ("max-concurrent 2 reached", "waiting for a free executor"), reason
    seen_limit = reason == "max-concurrent 2 reached"
    deadline = time.monotonic() + 60
    while any(one.run(i)["state"] not in ("succeeded", "failed") for i in ids):
        assert time.monotonic() < deadline
        stats = two.get("/api/v1/queue/stats").json()
        assert stats["current_concurrent"] <= 2 and stats["max_concurrent"] == 2
        if not seen_limit:
            queued = one.get("/api/v1/queue").json()["queued"]
            seen_limit = any(q["waiting_for"] == "max-concurrent 2 reached" for q in queued)
        time.sleep(0.1)
    assert all(one.run(i)["state"] == "succeeded" for i in ids)
    counts = [int(n) for n in ledger.read_text().split()]
    assert len(counts) == 6 and max(counts) <= 2, counts  # four executors, two at a time
    assert max(counts) == 2  # and they did run two at a time
    assert seen_limit


@pytest.mark.slow
def test_a_concurrency_group_queues_behind_the_older_run(servers: Servers, tmp_path: Path) -> None:
    server = servers(executors=3)
    gate = tmp_path / "gate"
    hold = f"for i in $(seq 600); do [ -f {gate} ] && exit 0; sleep 0.05; done; exit 9"
    first = server.submit(_grouped("deploy", hold, "prod"))
    server.wait(first, lambda r: r["state"] == "running")
    second = server.submit(_grouped("deploy", "echo second", "prod"))
    other = server.submit(_grouped("deploy", "echo other", "staging"))
    assert server.wait(other)["state"] == "succeeded"  # another group is not held back
    assert _waiting(server, second) == f"behind run {first} in concurrency group prod"
    assert server.run(second)["state"] == "queued"
    queue = server.get("/api/v1/queue").json()
    assert [r["id"] for r in queue["running"]] == [first] and queue["running"][0]["concurrency_group"] == "prod"
    gate.touch()
    done = server.wait(second)
    assert done["state"] == "succeeded"
    assert done["started_at"] >= server.run(first)["finished_at"]


@pytest.mark.slow
def test_cancel_in_progress_cancels_the_older_run(servers: Servers) -> None:
    server = servers(executors=2)
    document = _grouped("release", "sleep 60", "release-${TARGET}", cancel=True)
    body = {"document": document.replace("sleep 60", "echo started; sleep 60"), "env": {"TARGET": "eu"}}
    first = server.post("/api/v1/runs", json=body).json()["id"]
    server.wait(first, lambda r: r["state"] == "running")
    newer = {"document": document.replace("sleep 60", "echo newer"), "env": {"TARGET": "eu"}}
    second = server.post("/api/v1/runs", json=newer).json()["id"]
    other = {"document": document.replace("sleep 60", "echo us"), "env": {"TARGET": "us"}}
    third = server.post("/api/v1/runs", json=other).json()["id"]
    cancelled = server.wait(first, timeout=30)
    assert cancelled["state"] == "cancelled"
    assert cancelled["cancel_reason"] == f"superseded by run {second} in concurrency group release-eu"
    assert server.wait(second)["state"] == "succeeded"
    assert server.wait(third)["state"] == "succeeded"  # release-us: another group


def test_an_empty_group_is_refused_where_it_is_written(servers: Servers) -> None:
    server = servers(executors=0)
    response = server.post("/api/v1/runs", content=_grouped("x", "true", "${UNSET}").encode(),
                           headers={"content-type": "application/yaml"})
    assert response.status_code == 400 and "concurrency.group" in response.json()["error"]["message"]
    bad = server.post("/api/v1/runs", content=("concurrency: {group: 3, cancel_in_progress: maybe}\n"
                                                + pipeline(("a", "true"))).encode(),
                      headers={"content-type": "application/yaml"})
    assert bad.status_code == 422
    assert any(d["line"] == 1 for d in bad.json()["error"]["details"])
    assert server.get("/api/v1/runs").json()["total"] == 0


@pytest.mark.slow
def test_a_run_of_another_group_does_not_starve_behind_a_long_queue(servers: Servers, tmp_path: Path) -> None:
    server = servers(executors=2)
    gate = tmp_path / "gate"
    hold = f"for i in $(seq 600); do [ -f {gate} ] && exit 0; sleep 0.05; done; exit 9"
    first = server.submit(_grouped("deploy", hold.replace("seq 600", "seq 1800"), "prod"))
    server.wait(first, lambda r: r["state"] == "running")
    behind = [server.submit(_grouped("deploy", "true", "prod")) for _ in range(21)]  # more than a round's 20
    other = server.submit(_grouped("deploy", "echo other", "staging"))
    assert server.wait(other)["state"] == "succeeded"
    assert server.run(first)["state"] == "running"
    for run_id in behind:  # a queued run whose cancel was requested is let through at once
        assert server.post(f"/api/v1/runs/{run_id}/cancel").status_code == 202
    assert {server.wait(run_id)["state"] for run_id in behind} == {"cancelled"}
    gate.touch()
    assert server.wait(first)["state"] == "succeeded"


@pytest.mark.slow
def test_the_limit_holds_through_a_kill_9_and_the_takeover(servers: Servers, tmp_path: Path) -> None:
    first = servers(executors=1, lease_seconds=3, args=["--max-concurrent", "1"])
    gate = tmp_path / "gate"
    hold = f"for i in $(seq 1200); do [ -f {gate} ] && exit 0; sleep 0.05; done; exit 9"
    older = first.submit(pipeline(("hold", hold), name="older"))
    first.wait(older, lambda r: r["state"] == "running")
    second = servers(executors=1, lease_seconds=3, args=["--max-concurrent", "1"])
    newer = second.submit(pipeline(("after", "echo newer"), name="newer"))
    assert _waiting(second, newer) == "max-concurrent 1 reached"
    first.kill9()  # the older run's attempt dies with its server: the other replica takes it over first
    taken = second.wait(older, lambda r: r["state"] == "running" and r["attempt"] == 2, timeout=60)
    assert taken["attempt"] == 2
    assert second.run(newer)["state"] == "queued"  # still held: the taken-over run counts
    gate.touch()
    assert second.wait(older)["state"] == "succeeded"
    done = second.wait(newer)
    assert done["state"] == "succeeded" and done["started_at"] >= second.run(older)["finished_at"]
