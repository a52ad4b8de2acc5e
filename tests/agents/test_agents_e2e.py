"""A server and agent processes on loopback: routing by labels, logs, agent loss, partitions, cancel.

Every test runs on SQLite and PostgreSQL (the ``servers`` fixture).
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from tests.agents.conftest import Fleet, logs
from tests.server.test_server_streams import _events

pytestmark = pytest.mark.slow  # real server and agent processes: several seconds each

TWO_JOBS = """
name: routed
stages:
  - name: build
    jobs:
      - name: linux
        labels: {os: linux}
        steps:
          - {name: one, command: "echo from-$AGENT_NAME_HINT-linux; echo shared > f.txt"}
          - {name: two, command: "cat f.txt; echo step-two >&2"}
      - name: gpu
        label_selector:
          match_expressions: [{key: cpu-cores, operator: GT, values: ["8"]}, {key: gpu, operator: EXISTS}]
        steps:
          - {name: one, command: "echo on-gpu"}
  - name: test
    jobs:
      - name: after
        labels: {os: linux}
        steps:
          - {name: one, command: "echo after"}
"""


def _agent_of(fleet: Fleet, name: str) -> str:
    assert fleet.server is not None
    return next(a["id"] for a in fleet.server.get("/api/v1/agents").json()["items"] if a["name"] == name)


def test_jobs_run_on_the_agents_their_selectors_pick_with_their_logs(fleet: Fleet) -> None:
    server = fleet.start_server()
    small = fleet.agent("small", "os=linux,cpu-cores=4")
    big = fleet.agent("big", "gpu=true,cpu-cores=16")
    fleet.registered(2)
    run_id = server.submit(TWO_JOBS)
    run = server.wait(run_id, timeout=60)
    assert run["state"] == "succeeded", (run, server.log(), small.log(), big.log())
    lines = {(x["node"], x["stream"], x["line"]) for x in logs(server, run_id)}
    assert ("build/linux/one", "stdout", "from--linux") in lines
    assert ("build/linux/two", "stdout", "shared") in lines  # the job's steps share one workspace
    assert ("build/linux/two", "stderr", "step-two") in lines
    assert ("build/gpu/one", "stdout", "on-gpu") in lines
    # each job was claimed by the one agent its selector matches
    assert "claimed job linux" in small.log() and "claimed job gpu" not in small.log()
    # a job whose every step came before the next stage's job was over (workspace gone) before it started
    assert small.log().index("job linux (") < small.log().index("claimed job after"), small.log()
    assert "claimed job gpu" in big.log() and "claimed job linux" not in big.log()
    agents = {a["name"]: a for a in server.get("/api/v1/agents").json()["items"]}
    assert agents["big"]["labels"] == {"gpu": "true", "cpu-cores": "16"}
    assert agents["big"]["host"]["cpus"] >= 1 and agents["big"]["capacity"] == 1
    listed = subprocess.run([sys.executable, "-m", "worldtree.cli.main", "agents", "--server", server.url],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[1]: line for line in listed.stdout.splitlines()}
    assert set(rows) == {"small", "big"} and "cpu-cores=16,gpu=true" in rows["big"] and "0/1" in rows["big"]
    # a job no agent matches waits (pending) rather than running anywhere
    waiting = server.submit("name: w\njobs:\n  x: {labels: {os: plan9}, steps: [echo never]}\n")
    time.sleep(1.0)
    assert server.run(waiting)["state"] == "running"
    assert all(n["state"] in ("pending", "running") for n in server.run(waiting)["nodes"])
    server.post(f"/api/v1/runs/{waiting}/cancel")
    assert server.wait(waiting, timeout=30)["state"] == "cancelled"

    # labels change at run time (merge, replace); a drained agent takes no new job
    agent_id = _agent_of(fleet, "small")
    assert server.get(f"/api/v1/agents/{agent_id}").json()["status"] == "idle"
    merged = httpx.patch(f"{server.url}/api/v1/agents/{agent_id}/labels", json={"labels": {"zone": "a"}}).json()
    assert merged["labels"] == {"os": "linux", "cpu-cores": "4", "zone": "a"}
    replaced = httpx.patch(f"{server.url}/api/v1/agents/{agent_id}/labels",
                           json={"labels": {"zone": "b"}, "mode": "replace"}).json()
    assert replaced["labels"] == {"zone": "b"}
    assert server.post(f"/api/v1/agents/{agent_id}/drain").json()["draining"] is True
    missing = server.get("/api/v1/agents/agent-nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    drained = server.submit("name: d\njobs:\n  x: {labels: {zone: b}, steps: [echo hi]}\n")
    time.sleep(1.0)
    assert server.run(drained)["state"] == "running" and "claimed job x" not in small.log()
    server.post(f"/api/v1/runs/{drained}/cancel")
    server.wait(drained, timeout=30)

    # SIGTERM drains: holding no job, the agent unregisters and exits 0
    big.signal(signal.SIGTERM)
    assert big.proc is not None and big.proc.wait(timeout=15) == 0
    assert "unregistered" in big.log()
    assert server.get(f"/api/v1/agents/{_agent_of(fleet, 'big')}").json()["status"] == "offline"


LONG = """
name: long
jobs:
  work:
    labels: {pool: a}
    steps:
      - name: slow
        retry: {max: 2, backoff: 0s}
        command: "echo started-$$; sleep 3; echo finished"
"""


TWO_STEPS = """
name: moved
jobs:
  work:
    labels: {pool: a}
    steps:
      - {name: make, command: "echo made-here > f.txt"}
      - name: slow
        retry: {max: 2, backoff: 0s}
        command: "test -f f.txt || exit 7; echo started-$$; sleep 2; echo finished"
"""


@pytest.mark.slow
def test_kill9_of_an_agent_mid_job_the_job_finishes_on_another(fleet: Fleet) -> None:
    """The lost try fails; the next one runs on the other agent, where the job's earlier step runs
    again first (the job restarts whole in a fresh workspace: step two finds step one's file)."""
    server = fleet.start_server()
    first = fleet.agent("first", "pool=a")
    fleet.registered(1)
    run_id = server.submit(TWO_STEPS)
    first.wait_log("claimed job work")
    fleet.wait_for(lambda: any("started-" in x["line"] for x in logs(server, run_id)), message="step started")
    second = fleet.agent("second", "pool=a")
    first.signal(signal.SIGKILL)
    run = server.wait(run_id, timeout=60)
    assert run["state"] == "succeeded", (run, server.log(), second.log())
    node = next(n for n in run["nodes"] if n["id"] == "work/slow")
    assert node["try"] == 2  # the lost try counted as failed, the second one ran on the other agent
    assert "claimed job work" in second.log()
    lines = [x["line"] for x in logs(server, run_id)]
    assert lines.count("finished") == 1
    assert "[worldtree] job work moved to a new agent: running its step work/make again first" in lines


@pytest.mark.slow
def test_sigstop_partition_requeues_and_the_stale_report_is_refused(fleet: Fleet) -> None:
    server = fleet.start_server()
    frozen = fleet.agent("frozen", "pool=a")
    fleet.registered(1)
    run_id = server.submit(LONG.replace("sleep 3", "sleep 2"))
    frozen.wait_log("claimed job work")
    fleet.wait_for(lambda: any("started-" in x["line"] for x in logs(server, run_id)), message="step started")
    frozen.signal(signal.SIGSTOP)
    other = fleet.agent("other", "pool=a")
    run = server.wait(run_id, timeout=60)
    assert run["state"] == "succeeded", (run, server.log(), other.log())
    assert "claimed job work" in other.log()
    frozen.signal(signal.SIGCONT)  # its step ends; its report carries the old token
    fleet.wait_for(lambda: "refused" in frozen.log() or "revoked" in frozen.log(), timeout=20,
                   message="the stale agent hears that its lease is gone")
    time.sleep(0.5)
    final = server.run(run_id)
    assert final["state"] == "succeeded" and final["nodes"][0]["try"] == 2  # nothing double-counted
    assert [x["line"] for x in logs(server, run_id)].count("finished") == 1


def _alive(pid: int) -> bool:
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow
def test_server_restart_under_a_running_agent_the_agent_reconnects_and_the_run_finishes(fleet: Fleet) -> None:
    server = fleet.start_server()
    agent = fleet.agent("steady", "pool=a")
    fleet.registered(1)
    run_id = server.submit(LONG.replace("sleep 3", "sleep 1"))
    fleet.wait_for(lambda: any("started-" in x["line"] for x in logs(server, run_id)), message="step started")
    server.kill9()
    server.start()
    run = server.wait(run_id, timeout=60)
    assert run["state"] == "succeeded", (run, server.log(), agent.log())
    assert "registered again" in agent.log() or "connection" in agent.log()
    assert agent.proc is not None and agent.proc.poll() is None  # the agent lived through it


def test_live_follower_sees_agent_lines_and_cancel_reaches_the_process_tree(fleet: Fleet, tmp_path: Path) -> None:
    server = fleet.start_server()
    fleet.agent("talker", "pool=a")
    fleet.registered(1)
    gate = tmp_path / "gate"
    wait = f"echo first; for i in $(seq 300); do [ -f {gate} ] && break; sleep 0.05; done; [ -f {gate} ] || exit 9"
    run_id = server.submit(f"name: live\njobs:\n  w:\n    labels: {{pool: a}}\n    steps:\n"
                           f"      - {{name: talk, command: {json.dumps(wait + '; echo second')}}}\n")
    seen = []
    for event, _, data in _events(server, run_id):
        if event == "end":
            assert json.loads(data) == {"state": "succeeded"}
            break
        line = json.loads(data)["line"]
        seen.append(line)
        if line == "first":
            assert server.run(run_id)["nodes"][0]["state"] == "running"
            gate.touch()
    assert seen == ["first", "second"]

    # cancel reaches the agent's process tree: the step's background child is gone too
    run_id = server.submit("name: c\njobs:\n  w:\n    labels: {pool: a}\n    steps:\n"
                           "      - {name: s, command: 'sh -c \"sleep 1000\" & echo child=$!; wait'}\n")
    fleet.wait_for(lambda: any(x["line"].startswith("child=") for x in logs(server, run_id)), message="child pid")
    pid = int(next(x["line"] for x in logs(server, run_id) if x["line"].startswith("child="))[6:])
    assert psutil.pid_exists(pid)
    started = time.monotonic()
    assert server.post(f"/api/v1/runs/{run_id}/cancel").status_code in (200, 202)
    fleet.wait_for(lambda: not _alive(pid), timeout=10, message=f"pid {pid} still alive")
    took = time.monotonic() - started
    assert server.wait(run_id, timeout=30)["state"] == "cancelled"
    assert took < 8, took

    # a server secret reaches the step on the agent, masked in the log, and is stored nowhere in clear
    value = "s3cr3t-on-agent-4711"
    assert httpx.put(f"{server.url}/api/v1/secrets/DEPLOY_TOKEN", json={"value": value}).status_code == 201
    digest = hashlib.sha256(f"{value}\n".encode()).hexdigest()[:16]  # the document must not hold the value
    run_id = server.submit("name: s\njobs:\n  w:\n    labels: {pool: a}\n    secrets: [DEPLOY_TOKEN]\n"
                           "    steps: ['echo token=$DEPLOY_TOKEN; "
                           f"test $(echo $DEPLOY_TOKEN | sha256sum | cut -c1-16) = {digest}']\n")
    assert server.wait(run_id, timeout=30)["state"] == "succeeded"
    assert [x["line"] for x in logs(server, run_id)] == ["token=***"]
    if fleet.servers.kind == "sqlite":  # the store file, its WAL, the logs, the agent's workdir
        files = [p for p in tmp_path.rglob("*") if p.is_file()]
        assert any(p.name == "worldtree.db" for p in files)
        assert [p for p in files if value.encode() in p.read_bytes()] == []
