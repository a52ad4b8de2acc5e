"""Submit, read, cancel and retry runs through a real server process, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests.server.conftest import Servers, pipeline


def test_submitted_run_is_queued_then_succeeds_with_its_logs_stored(servers: Servers, tmp_path: Path) -> None:
    server = servers()
    run_id = server.submit(pipeline(("hello", "echo hello; echo oops >&2"), ("pwd", "pwd")))
    run = server.wait(run_id)
    assert run["state"] == "succeeded"
    assert run["attempt"] == 1 and run["pipeline"] == "demo"
    assert [(n["id"], n["state"], n["exit_code"]) for n in run["nodes"]] == [
        ("build/main/hello", "succeeded", 0), ("build/main/pwd", "succeeded", 0)]
    logs = server.get(f"/api/v1/runs/{run_id}/logs").json()
    by_line = {(i["node"], i["stream"], i["line"]) for i in logs["items"]}
    assert ("build/main/hello", "stdout", "hello") in by_line
    assert ("build/main/hello", "stderr", "oops") in by_line
    workspace = next(i["line"] for i in logs["items"] if i["node"] == "build/main/pwd")
    assert workspace.startswith(str(tmp_path / "data" / "workspaces"))
    assert not Path(workspace).exists()  # a succeeded run's workspace is removed
    assert (tmp_path / "data" / "workspaces").is_dir()  # ...but not the directory every run shares
    text = server.get(f"/api/v1/runs/{run_id}/logs", params={"format": "text", "node": "build/main/hello"})
    assert text.status_code == 200 and text.text.splitlines() == ["hello", "oops"]
    listed = server.get("/api/v1/runs", params={"state": "succeeded"}).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == run_id
    assert server.get("/api/v1/runs", params={"state": "failed"}).json()["total"] == 0
    assert server.get(f"/api/v1/runs/{run_id}/document").text.startswith("name: demo")
    graph = server.get(f"/api/v1/runs/{run_id}/graph").json()
    assert [(n["id"], n["state"]) for n in graph["nodes"]] == [("build/main/hello", "succeeded"),
                                                                ("build/main/pwd", "succeeded")]
    assert graph["edges"] == [{"from": "build/main/hello", "to": "build/main/pwd"}]
    assert server.get(f"/api/v1/tasks/{run_id}").json() == run


def test_json_submission_with_env_and_a_failing_step(servers: Servers) -> None:
    server = servers()
    doc = pipeline(("greet", "echo $GREETING"), ("boom", "exit 3"), ("never", "echo never"))
    response = server.post("/api/v1/runs", json={"document": doc, "env": {"GREETING": "hi there"}})
    assert response.status_code == 202, response.text
    run = server.wait(response.json()["id"])
    assert run["state"] == "failed"
    states = {n["id"]: (n["state"], n["exit_code"]) for n in run["nodes"]}
    assert states["build/main/boom"] == ("failed", 3)
    assert states["build/main/never"][0] in ("skipped", "cancelled")
    lines = server.get(f"/api/v1/runs/{run['id']}/logs", params={"node": "build/main/greet"}).json()["items"]
    assert [i["line"] for i in lines] == ["hi there"]


def test_malformed_document_is_422_with_located_errors_and_nothing_is_stored(servers: Servers) -> None:
    server = servers()
    bad = "name: demo\nstages:\n  - name: build\n    jobs:\n      - name: main\n        steps:\n" \
          "          - name: a\n            comand: echo typo\n"
    response = server.post("/api/v1/runs", content=bad, headers={"content-type": "application/yaml"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_document"
    assert any(d["line"] == 7 and d["col"] >= 1 and "command" in d["message"] for d in error["details"]), error
    broken = server.post("/api/v1/runs", content="name: [unclosed\n", headers={"content-type": "application/yaml"})
    assert broken.status_code == 422 and broken.json()["error"]["details"][0]["line"] in (1, 2)
    assert server.get("/api/v1/runs").json() == {"items": [], "total": 0, "page": 1, "page_size": 50}


def test_errors_have_one_shape(servers: Servers) -> None:
    server = servers()
    missing = server.get("/api/v1/runs/20990101-000000-zzzzz")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    bad_page = server.get("/api/v1/runs", params={"page": 0})
    assert bad_page.status_code == 422 and set(bad_page.json()["error"]) == {"code", "message", "details"}
    bad_json = server.post("/api/v1/runs", content="{}", headers={"content-type": "application/json"})
    assert bad_json.status_code == 400 and "document" in bad_json.json()["error"]["message"]
    assert server.get("/nowhere").json()["error"]["code"] == "not_found"
    assert server.get("/healthz").json() == {"status": "ok"}
    spec = server.get("/openapi.json").json()
    assert {"/api/v1/runs", "/api/v1/runs/{run_id}/logs/stream", "/api/v1/runs/{run_id}/cancel"} <= set(spec["paths"])


def test_cancel_reaches_the_running_step_and_a_finished_run_cannot_be_cancelled(servers: Servers) -> None:
    server = servers()
    run_id = server.submit(pipeline(("wait", "sleep 30"), ("after", "echo after")))
    server.wait(run_id, lambda r: any(n["state"] == "running" for n in r["nodes"]))
    started = time.monotonic()
    response = server.post(f"/api/v1/runs/{run_id}/cancel")
    assert response.status_code == 202, response.text
    run = server.wait(run_id, timeout=20)
    assert run["state"] == "cancelled"
    assert time.monotonic() - started < 10
    assert {n["id"]: n["state"] for n in run["nodes"]} == {"build/main/wait": "cancelled",
                                                            "build/main/after": "cancelled"}
    again = server.post(f"/api/v1/runs/{run_id}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"


def test_retry_queues_a_new_attempt_that_reuses_succeeded_steps(servers: Servers, tmp_path: Path) -> None:
    server = servers()
    count, gate = tmp_path / "first.count", tmp_path / "gate"
    run_id = server.submit(pipeline(("first", f"echo x >> {count}"), ("second", f"test -f {gate}")))
    assert server.wait(run_id)["state"] == "failed"
    gate.touch()
    retried = server.post(f"/api/v1/runs/{run_id}/retry")
    assert retried.status_code == 202 and retried.json()["state"] == "queued", retried.text
    run = server.wait(run_id, lambda r: r["attempt"] == 2 and r["state"] in ("succeeded", "failed"))
    assert run["state"] == "succeeded"
    assert {n["id"]: n["state"] for n in run["nodes"]} == {"build/main/first": "reused",
                                                            "build/main/second": "succeeded"}
    assert count.read_text() == "x\n"  # the succeeded step did not run again
    done = server.post(f"/api/v1/runs/{run_id}/retry")
    assert done.status_code == 409  # a succeeded run is not retried


def test_many_runs_each_run_once(servers: Servers, tmp_path: Path) -> None:
    server = servers(executors=3)
    ledger = tmp_path / "ledger"
    ids = [server.submit(pipeline(("mark", f"echo $WORLDTREE_RUN_ID >> {ledger}"))) for _ in range(8)]
    for run_id in ids:
        assert server.wait(run_id)["state"] == "succeeded"
    assert sorted(ledger.read_text().split()) == sorted(ids)
    page = server.get("/api/v1/runs", params={"page": 2, "page_size": 3}).json()
    assert page["total"] == 8 and [i["id"] for i in page["items"]] == sorted(ids, reverse=True)[3:6]
    other = server.submit(pipeline(("x", "true"), name="other"))
    server.wait(other)
    assert [i["id"] for i in server.get("/api/v1/runs", params={"pipeline": "other"}).json()["items"]] == [other]
    created = server.run(other)["created_at"]
    newer = server.get("/api/v1/runs", params={"since": created}).json()
    assert [i["id"] for i in newer["items"]] == [other]
    older = server.get("/api/v1/runs", params={"until": created, "pipeline": "demo"}).json()
    assert older["total"] == 8
    stats = server.get("/api/v1/queue/stats").json()
    assert stats["succeeded"] == 9 and stats["pending"] == stats["running"] == stats["failed"] == 0
    assert stats["executors"] == 3
    naive = server.get("/api/v1/runs", params={"since": "2026-01-01T00:00:00"})
    assert naive.status_code == 400 and "time zone" in naive.json()["error"]["message"]



def test_steps_see_neither_the_servers_environment_nor_its_secrets(servers: Servers) -> None:
    server = servers(env={"SERVER_ONLY_TOKEN": "s3cr3t-of-the-service"})
    plain = server.submit(pipeline(("peek", 'echo "[${SERVER_ONLY_TOKEN:-}]"')))
    run = server.wait(plain)
    assert run["state"] == "succeeded"
    assert [i["line"] for i in server.get(f"/api/v1/runs/{plain}/logs").json()["items"]] == ["[]"]
    as_secret = pipeline(("peek", 'echo "[$SERVER_ONLY_TOKEN]"')).replace(
        "      - name: main\n", "      - name: main\n        secrets: [SERVER_ONLY_TOKEN]\n")
    run = server.wait(server.submit(as_secret))
    assert run["state"] == "failed"
    assert "SERVER_ONLY_TOKEN" in (run["nodes"][0]["error"] or "")
    lines = server.get(f"/api/v1/runs/{run['id']}/logs").json()["items"]
    assert all("s3cr3t" not in i["line"] for i in lines)


def test_a_cancel_made_while_queued_is_kept_until_an_executor_claims_the_run(servers: Servers) -> None:
    front = servers(executors=0)
    run_id = front.submit(pipeline(("never", "echo should not run")))
    assert front.post(f"/api/v1/runs/{run_id}/cancel").status_code == 202
    time.sleep(0.5)
    queued = front.run(run_id)
    assert queued["state"] == "queued" and queued["cancel_reason"]
    worker = servers(executors=1)
    run = worker.wait(run_id)
    assert run["state"] == "cancelled"
    assert run["nodes"][0]["state"] == "cancelled"
    assert worker.get(f"/api/v1/runs/{run_id}/logs").json()["items"] == []


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(servers: Servers, tmp_path: Path) -> None:
    server = servers(executors=1)
    server.wait(server.submit(pipeline(("a", "echo a"))))
    tool = Path(sys.executable).parent / "schemathesis"
    proc = subprocess.run([str(tool), "run", f"{server.url}/openapi.json", "--checks", "not_a_server_error",
                           "--max-examples", "60", "--seed", "1",
                           # a stream that never ends (tests/server/test_server_events.py)
                           "--exclude-path", "/api/v1/events"],
                          capture_output=True, text=True, timeout=600,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "passed" in proc.stdout
    assert "internal error" not in server.log()


def test_delete_forgets_a_finished_run_and_its_kept_workspace(servers: Servers) -> None:
    server = servers()
    failed = server.submit(pipeline(("where", "pwd"), ("boom", "exit 1")))
    assert server.wait(failed)["state"] == "failed"
    workspace = Path(server.get(f"/api/v1/runs/{failed}/logs").json()["items"][0]["line"])
    assert workspace.is_dir()  # kept for a retry
    running = server.submit(pipeline(("wait", "sleep 30")))
    server.wait(running, lambda r: r["state"] == "running")
    busy = httpx.delete(f"{server.url}/api/v1/runs/{running}", timeout=30)
    assert busy.status_code == 409
    gone = httpx.delete(f"{server.url}/api/v1/runs/{failed}", timeout=30)
    assert gone.status_code == 204
    assert server.get(f"/api/v1/runs/{failed}").status_code == 404
    assert server.get(f"/api/v1/runs/{failed}/logs").status_code == 404
    assert not workspace.exists()
    assert [i["id"] for i in server.get("/api/v1/runs").json()["items"]] == [running]
    server.post(f"/api/v1/runs/{running}/cancel")
    server.wait(running)
