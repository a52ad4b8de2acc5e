"""kill -9 of a server mid-run, and replicas on one PostgreSQL: every run ends once, succeeded steps stay done."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.server.conftest import Server, Servers, pipeline


def _resumable(tmp_path: Path) -> tuple[str, Path, Path]:
    """step1 counts its runs; step2 hangs on its first run and passes on its second."""
    first, second = tmp_path / "first.count", tmp_path / "second.count"
    doc = pipeline(("one", f"echo x >> {first}"),
                   ("two", f"echo x >> {second}; [ $(wc -l < {second}) -ge 2 ] || sleep 60"),
                   ("three", "echo done"))
    return doc, first, second


def _wait_for(path: Path, lines: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count("\n") >= lines:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never got {lines} line(s)")


def _step_two_running(run: dict[str, Any]) -> bool:
    """The store knows step one succeeded (a success not yet written is run again, by design)."""
    states = {n["id"]: n["state"] for n in run["nodes"]}
    return states.get("build/main/one") == "succeeded" and states.get("build/main/two") == "running"


def _assert_resumed(server: Server, run_id: str, first: Path, second: Path) -> None:
    run = server.wait(run_id, timeout=60)
    assert run["state"] == "succeeded", run
    assert run["attempt"] == 2
    assert {n["id"]: n["state"] for n in run["nodes"]} == {
        "build/main/one": "reused", "build/main/two": "succeeded", "build/main/three": "succeeded"}
    assert first.read_text() == "x\n"  # the step that succeeded before the kill did not run again
    assert second.read_text() == "x\nx\n"  # the interrupted one ran again, once


@pytest.mark.slow
def test_kill9_mid_run_then_restart_resumes_the_run_once(servers: Servers, tmp_path: Path) -> None:
    server = servers(executors=1)
    doc, first, second = _resumable(tmp_path)
    (tmp_path / "p.yaml").write_text(doc)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORLDTREE_")}
    follower = subprocess.Popen([sys.executable, "-m", "worldtree.cli.main", "client", "run", "p.yaml",
                                 "--server", server.url], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(second, 1)
        run_id = server.get("/api/v1/runs").json()["items"][0]["id"]
        server.wait(run_id, _step_two_running)
        server.kill9()
        server.start()  # same store, same data dir, same port
        _assert_resumed(server, run_id, first, second)
        out, err = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 0, err
    assert out.count("build/main/three | done") == 1  # the follower reconnected and saw the end once


@pytest.mark.slow
def test_a_replica_killed_mid_run_is_taken_over_by_another(pg_servers: Servers, tmp_path: Path) -> None:
    doomed = pg_servers(executors=1, lease_seconds=3)
    doc, first, second = _resumable(tmp_path)
    run_id = doomed.submit(doc)
    _wait_for(second, 1)
    doomed.wait(run_id, _step_two_running)
    survivor = pg_servers(executors=1, lease_seconds=3)
    assert survivor.run(run_id)["state"] == "running"  # any replica answers; the live lease is respected
    time.sleep(1.0)
    assert second.read_text() == "x\n"  # the survivor did not start the live run a second time
    doomed.kill9()
    _assert_resumed(survivor, run_id, first, second)


@pytest.mark.slow
def test_two_replicas_on_one_postgres_never_run_one_run_twice(pg_servers: Servers, tmp_path: Path) -> None:
    replicas = [pg_servers(executors=2, lease_seconds=5), pg_servers(executors=2, lease_seconds=5)]
    ledger = tmp_path / "ledger"
    doc = pipeline(("mark", f"echo $WORLDTREE_RUN_ID $PPID >> {ledger}; sleep 0.3"))
    ids = [replicas[i % 2].submit(doc) for i in range(12)]
    for run_id in ids:
        run = replicas[0].wait(run_id, timeout=90)
        assert run["state"] == "succeeded" and run["attempt"] == 1
    entries = [line.split() for line in ledger.read_text().splitlines()]
    assert sorted(run_id for run_id, _ in entries) == sorted(ids)
    pids = {int(pid) for _, pid in entries}
    assert pids == {r.proc.pid for r in replicas if r.proc is not None}  # both replicas did work


def test_a_follower_on_another_replica_sees_lines_while_the_step_runs(pg_servers: Servers, tmp_path: Path) -> None:
    runner = pg_servers(executors=1)
    reader = pg_servers(executors=0)  # serves the follower; runs nothing
    gate = tmp_path / "gate"
    wait = f"echo first; for i in $(seq 300); do [ -f {gate} ] && break; sleep 0.05; done; [ -f {gate} ] || exit 9"
    run_id = runner.submit(pipeline(("talk", wait + "; echo second")))
    seen = []
    with httpx.stream("GET", f"{reader.url}/api/v1/runs/{run_id}/logs/stream",
                      timeout=httpx.Timeout(10, read=20)) as response:
        event = "message"
        for raw in response.iter_lines():
            if raw.startswith("event:"):
                event = raw[6:].strip()
            elif raw.startswith("data:"):
                body = json.loads(raw[5:])
                if event == "end":
                    assert body == {"state": "succeeded"}
                    break
                seen.append(body["line"])
                if body["line"] == "first":
                    gate.touch()
    assert seen == ["first", "second"]


@pytest.mark.slow
def test_sigterm_stops_claiming_and_lets_the_run_under_way_finish(servers: Servers, tmp_path: Path) -> None:
    server = servers(executors=1)
    marker = tmp_path / "started"
    first = server.submit(pipeline(("slow", f"touch {marker}; sleep 2; echo done")))
    queued = server.submit(pipeline(("later", "echo later")))
    _wait_for_file(marker)
    assert server.proc is not None
    server.proc.terminate()
    server.proc.wait(timeout=30)
    server.start()  # read both runs back (and let the queued one run now)
    finished = server.run(first)
    assert finished["state"] == "succeeded" and finished["attempt"] == 1  # drained, not taken over
    assert server.wait(queued)["attempt"] == 1


def _wait_for_file(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_a_submit_on_one_replica_wakes_the_executors_of_another(pg_servers: Servers) -> None:
    front = pg_servers(executors=0)
    pg_servers(executors=1, args=["--poll-seconds", "120"])  # a worker only NOTIFY can wake in time
    time.sleep(0.5)  # its listener is up (it polls once when it starts listening)
    started = time.monotonic()
    run_id = front.submit(pipeline(("a", "echo a")))
    assert front.wait(run_id, timeout=20)["state"] == "succeeded"
    assert time.monotonic() - started < 20
