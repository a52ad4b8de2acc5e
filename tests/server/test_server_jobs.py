"""Jobs REST (seed 004's Job service) through a real server: list, get, logs, create, cancel, retry."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests.server.conftest import Server, Servers

pytestmark = pytest.mark.slow  # real server processes: several seconds each

TWO_JOBS = """name: two
stages:
  - name: build
    jobs:
      - name: compile
        steps:
          - name: a
            command: echo compiling
      - name: flaky
        steps:
          - name: b
            command: test -f "$MARK" || { touch "$MARK"; echo first try fails; exit 4; }
"""


def _call(server: Server, method: str, path: str, **kw: object) -> httpx.Response:
    return httpx.request(method, f"{server.url}{path}", timeout=30, **kw)  # type: ignore[arg-type]


def test_list_get_logs_and_retry_of_a_runs_jobs(servers: Servers, tmp_path: Path) -> None:
    server = servers()
    run_id = server.submit(TWO_JOBS.replace('"$MARK"', str(tmp_path / "mark")))
    assert server.wait(run_id)["state"] == "failed"
    listed = server.get("/api/v1/jobs", params={"run": run_id}).json()
    assert {j["id"]: j["state"] for j in listed["items"]} == {f"{run_id}:build.compile": "succeeded",
                                                              f"{run_id}:build.flaky": "failed"}
    job = server.get(f"/api/v1/jobs/{run_id}:build.flaky").json()
    assert (job["name"], job["stage"], job["exit_code"], job["attempt"]) == ("flaky", "build", 4, 1)
    assert job["executor"] and "@" in job["executor"]  # pid@host of the executor that ran it
    assert server.get(f"/api/v1/jobs/{run_id}/build/flaky").json()["id"] == job["id"]  # the other spelling
    only_failed = server.get("/api/v1/jobs", params={"state": "failed"}).json()
    assert [j["id"] for j in only_failed["items"]] == [job["id"]]
    assert server.get("/api/v1/jobs", params={"executor": job["executor"]}).json()["total"] == 2
    assert server.get("/api/v1/jobs", params={"executor": "no-such-agent"}).json()["total"] == 0
    lines = server.get(f"/api/v1/jobs/{job['id']}/logs").json()
    assert [i["line"] for i in lines["items"]] == ["first try fails"]
    text = server.get(f"/api/v1/jobs/{run_id}:build.compile/logs", params={"format": "text"})
    assert text.text == "compiling\n"

    retried = _call(server, "POST", f"/api/v1/jobs/{job['id']}/retry")
    assert retried.status_code == 202 and retried.json()["scope"] == "run"
    assert server.wait(run_id, until=lambda r: r["attempt"] == 2 and r["state"] in ("succeeded", "failed"))[
        "state"] == "succeeded"
    again = server.get(f"/api/v1/jobs/{job['id']}").json()
    assert (again["state"], again["attempt"]) == ("succeeded", 2)
    assert server.get(f"/api/v1/jobs/{run_id}:build.nope").status_code == 404
    assert server.get("/api/v1/jobs/not-an-id").status_code == 400


def test_create_job_runs_one_job_and_cancel_stops_its_run(servers: Servers) -> None:
    server = servers()
    made = _call(server, "POST", "/api/v1/jobs", json={
        "name": "hello", "commands": ["echo \"hi $WHO\"", "mkdir -p out", "echo x > out/r.txt"],
        "env": {"WHO": "there"}, "timeout": 60, "artifacts": {"paths": ["out/*"], "expire_in": "1d"},
        "retry_count": 1})
    assert made.status_code == 202, made.text
    job_id = made.json()["id"]
    run = server.wait(made.json()["run_id"])
    assert run["state"] == "succeeded", run
    view = server.get(f"/api/v1/jobs/{job_id}").json()
    assert (view["state"], view["retry_count"]) == ("succeeded", 1)
    assert [i["line"] for i in server.get(f"/api/v1/jobs/{job_id}/logs").json()["items"]
            if not i["line"].startswith("artifacts:")] == ["hi there"]
    assert [a["path"] for a in server.get(f"/api/v1/jobs/{job_id}/artifacts").json()["items"]] == ["out/r.txt"]
    bad = _call(server, "POST", "/api/v1/jobs", json={"name": "x", "commands": ["true"],
                                                      "artifacts": {"paths": ["../../etc/passwd"]}})
    assert bad.status_code == 422 and "leaves the workspace" in bad.text

    # label_selector passes through to the job (where it runs is the agents' business)
    slow = _call(server, "POST", "/api/v1/jobs", json={"name": "slow", "commands": ["sleep 30"],
                                                        "label_selector": {"match_labels": {"os": "windows"}}}).json()
    server.wait(slow["run_id"], until=lambda r: r["state"] == "running")
    waiting = server.get(f"/api/v1/jobs/{slow['id']}").json()
    assert waiting["state"] in ("pending", "running")
    assert waiting["label_selector"]["match_labels"] == {"os": "windows"}
    cancelled = _call(server, "POST", f"/api/v1/jobs/{slow['id']}/cancel")
    assert cancelled.status_code == 202 and cancelled.json()["scope"] == "run"
    assert server.wait(slow["run_id"], timeout=30)["state"] == "cancelled"
    assert server.get(f"/api/v1/jobs/{slow['id']}").json()["state"] == "cancelled"
