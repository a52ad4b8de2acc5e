"""Live log streams (SSE) and the `worldtree client` CLI against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
from tests.server.conftest import Server, Servers, pipeline


def _events(server: Server, run_id: str, last_event_id: str | None = None) -> Iterator[tuple[str, str, str]]:
    """``(event, id, data)`` as the stream sends them (bounded by the read timeout)."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    with httpx.stream("GET", f"{server.url}/api/v1/runs/{run_id}/logs/stream", headers=headers,
                      timeout=httpx.Timeout(10, read=20)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event, ident, data = "message", "", ""
        for raw in response.iter_lines():
            if raw == "":
                if data:
                    yield event, ident, data
                event, ident, data = "message", "", ""
            elif raw.startswith("event:"):
                event = raw[6:].strip()
            elif raw.startswith("id:"):
                ident = raw[3:].strip()
            elif raw.startswith("data:"):
                data = raw[5:].strip()


def test_a_line_reaches_the_follower_while_its_step_still_runs(servers: Servers, tmp_path: Path) -> None:
    server = servers()
    gate = tmp_path / "gate"
    # The step prints, then waits (bounded) for the test to have seen that line over SSE.
    wait = f"echo first; for i in $(seq 300); do [ -f {gate} ] && break; sleep 0.05; done; [ -f {gate} ] || exit 9"
    run_id = server.submit(pipeline(("talk", wait + "; echo second")))
    seen = []
    for event, _, data in _events(server, run_id):
        if event == "end":
            assert json.loads(data) == {"state": "succeeded"}
            break
        body = json.loads(data)
        assert set(body) == {"node", "stream", "line", "ts"}
        seen.append(body["line"])
        if body["line"] == "first":
            assert server.run(run_id)["nodes"][0]["state"] == "running"
            gate.touch()
    assert seen == ["first", "second"]


def test_last_event_id_resumes_without_gap_or_duplicate(servers: Servers) -> None:
    server = servers()
    run_id = server.submit(pipeline(("count", "for i in $(seq 1 60); do echo line-$i; sleep 0.01; done")))
    first: list[tuple[str, str]] = []
    for event, ident, data in _events(server, run_id):
        assert event == "message"
        first.append((ident, json.loads(data)["line"]))
        if len(first) == 17:
            break  # the follower disconnects mid-run
    rest: list[tuple[str, str]] = []
    for event, ident, data in _events(server, run_id, last_event_id=first[-1][0]):
        if event == "end":
            break
        rest.append((ident, json.loads(data)["line"]))
    lines = [line for _, line in first + rest]
    assert lines == [f"line-{i}" for i in range(1, 61)]
    ids = [int(ident) for ident, _ in first + rest]
    assert ids == sorted(set(ids))
    # a finished run's stream replays from the id given and ends
    tail = list(_events(server, run_id, last_event_id=str(ids[-3])))
    assert [json.loads(d).get("line") for e, _, d in tail if e == "message"] == ["line-59", "line-60"]
    assert tail[-1][0] == "end"


def _client(*args: str, cwd: Path, server: Server) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORLDTREE_")}
    env["WORLDTREE_SERVER"] = server.url
    return subprocess.run([sys.executable, "-m", "worldtree.cli.main", "client", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_client_run_streams_the_run_and_exits_with_its_code(servers: Servers, tmp_path: Path) -> None:
    server = servers()
    (tmp_path / "ok.yaml").write_text(pipeline(("hello", "echo hello from the server")))
    ok = _client("run", "ok.yaml", cwd=tmp_path, server=server)
    assert ok.returncode == 0, ok.stderr
    assert "build/main/hello | hello from the server" in ok.stdout
    assert "succeeded" in ok.stderr
    (tmp_path / "bad.yaml").write_text(pipeline(("boom", "echo going down; exit 4")))
    bad = _client("run", "bad.yaml", cwd=tmp_path, server=server)
    assert bad.returncode == 1 and "going down" in bad.stdout and "failed" in bad.stderr
    (tmp_path / "typo.yaml").write_text("name: x\nstages:\n  - name: s\n    jobz: []\n")
    typo = _client("run", "typo.yaml", cwd=tmp_path, server=server)
    assert typo.returncode == 2
    assert typo.stderr.splitlines()[0].startswith("typo.yaml:")
    assert "Traceback" not in typo.stderr
    listed = _client("runs", cwd=tmp_path, server=server)
    assert listed.returncode == 0 and listed.stdout.count("\n") == 2  # the refused document was never stored
    run_id = listed.stdout.split()[0]
    logs = _client("logs", run_id, cwd=tmp_path, server=server)
    assert logs.returncode == 0 and logs.stdout.startswith("build/main/boom | going down")


def test_client_without_a_server_says_so(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORLDTREE_")}
    (tmp_path / "ok.yaml").write_text(pipeline(("a", "true")))
    proc = subprocess.run([sys.executable, "-m", "worldtree.cli.main", "client", "run", "ok.yaml", "--server",
                           "http://127.0.0.1:9"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "cannot reach http://127.0.0.1:9" in proc.stderr and "Traceback" not in proc.stderr


def _samples(server: Server) -> dict[str, float]:
    text = server.get("/metrics").text
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line and not line.startswith("#")}


def test_metrics_count_runs_steps_queue_and_requests(servers: Servers) -> None:
    idle = servers(executors=0)  # a replica without executors: the run waits in the shared queue
    waiting = idle.submit(pipeline(("d", "true")))
    before = _samples(idle)
    assert before["worldtree_queue_size"] == before["worldtree_tasks_pending_total"] == 1
    assert not any(key.startswith("worldtree_tasks_total{") for key in before)
    server = servers()
    ok = server.submit(pipeline(("a", "echo a"), ("b", "echo b")))
    bad = server.submit(pipeline(("c", "exit 1")))
    for run_id in (waiting, ok, bad):
        server.wait(run_id)
    samples = _samples(server)
    assert samples['worldtree_tasks_total{status="succeeded"}'] == 2
    assert samples['worldtree_tasks_total{status="failed"}'] == 1
    assert samples['worldtree_step_executions_total{status="succeeded"}'] == 3
    assert samples['worldtree_step_executions_total{status="failed"}'] == 1
    assert samples["worldtree_task_duration_seconds_count"] == 3
    assert samples["worldtree_queue_size"] == samples["worldtree_tasks_pending_total"] == 0
    posted = 'http_request_duration_seconds_count{method="POST",route="/api/v1/runs",status="202"}'
    assert samples[posted] == 2
    assert samples['http_request_duration_seconds_count{method="GET",route="/api/v1/runs/{run_id}",status="200"}'] >= 3


def test_no_auth_is_refused_on_a_non_loopback_address(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORLDTREE_")}
    proc = subprocess.run([sys.executable, "-m", "worldtree.cli.main", "server", "--host", "0.0.0.0", "--no-auth",
                           "--data-dir", str(tmp_path / "data")], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert "--no-auth on 0.0.0.0" in proc.stderr and "loopback" in proc.stderr
    assert not (tmp_path / "data").exists()
