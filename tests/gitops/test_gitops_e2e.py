"""End to end on a real server: signed GitHub push → the commit's ci.yaml runs → statuses posted.

The repository is a local bare git repository; the payload is octokit's recorded push rewritten to
it; the status API is a loopback server that records what it receives.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from gitops_fakes import StatusHost, commit, github_headers, github_push, make_repo
from tests.server.conftest import Server, Servers

pytestmark = pytest.mark.slow  # real servers, git and runs: several seconds each

SECRET = "webhook-s3cret"
TOKEN = "status-token-123"
CI = """\
name: app-ci
on:
  push:
    branches: [main]
    paths: ["**.py", ci.yaml]
jobs:
  build:
    steps:
      - run: echo "sha=$CI_COMMIT_SHA ref=$CI_COMMIT_REF_NAME repo=$GITHUB_REPOSITORY event=$CI_EVENT ci=$CI"
      - run: cat hello.txt && test "$(git rev-parse HEAD)" = "$GITHUB_SHA"
"""


def _register(server: Server, bare: Path, status_host: StatusHost, **extra: Any) -> dict[str, Any]:
    body = {"name": "acme/app", "provider": "github", "clone_url": f"file://{bare}", "webhook_secret": SECRET,
            "status_token": TOKEN, "api_url": status_host.url, **extra}
    response = server.post("/api/v1/repos", json=body)
    assert response.status_code == 201, response.text
    described: dict[str, Any] = response.json()
    assert SECRET not in response.text and TOKEN not in response.text
    return described


def _delivery(server: Server, delivery_id: str, until: tuple[str, ...] = ("done", "skipped", "failed"),
              timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for item in server.get("/api/v1/deliveries").json()["items"]:
            if item["delivery_id"] == delivery_id and item["state"] in until:
                return dict(item)
        time.sleep(0.1)
    raise AssertionError(f"delivery {delivery_id} not handled: {server.get('/api/v1/deliveries').text}\n{server.log()}")


def _statuses(host: StatusHost, count: int, timeout: float = 30) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = host.seen()
        if len(seen) >= count:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"{len(host.seen())} statuses posted, {count} expected: {host.seen()}")


def test_signed_push_runs_the_commit_and_posts_pending_then_success(
        servers: Servers, tmp_path: Path, status_host: StatusHost) -> None:
    bare, sha = make_repo(tmp_path, {"ci.yaml": CI, "hello.txt": "hello from the commit\n"})
    server = servers(env={"WORLDTREE_PUBLIC_URL": "https://ci.example"})
    _register(server, bare, status_host)
    body = github_push("acme/app", f"file://{bare}", sha)
    response = server.post("/api/v1/webhooks/github", content=body, headers=github_headers(SECRET, body, "d-1"))
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"

    delivery = _delivery(server, "d-1")
    assert delivery["state"] == "done", delivery
    assert delivery["sha"] == sha
    run = server.wait(delivery["run_id"])
    assert run["state"] == "succeeded", (run, server.log())
    lines = "\n".join(item["line"] for item in server.get(f"/api/v1/runs/{run['id']}/logs").json()["items"])
    assert f"sha={sha} ref=main repo=acme/app event=push ci=true" in lines
    assert "hello from the commit" in lines

    seen = _statuses(status_host, 2)
    assert [r.body["state"] for r in seen] == ["pending", "success"]
    for recorded in seen:
        assert recorded.path == f"/repos/acme/app/statuses/{sha}"
        assert recorded.headers["authorization"] == f"Bearer {TOKEN}"
        assert recorded.body["context"] == "worldtree/app-ci"
        assert recorded.body["target_url"] == f"https://ci.example/console/runs/{run['id']}"
    time.sleep(1.0)  # the reporter's next passes must not post again
    assert len(status_host.seen()) == 2
    assert TOKEN not in server.log() and SECRET not in server.log()

    # a replay of the same delivery: acknowledged, nothing queued twice
    again = server.post("/api/v1/webhooks/github", content=body, headers=github_headers(SECRET, body, "d-1"))
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert [i["delivery_id"] for i in server.get("/api/v1/deliveries").json()["items"]] == ["d-1"]
    assert server.get("/api/v1/runs").json()["total"] == 1

    # the same commit through GitLab: its token header, its event names, its status API
    status_host.requests.clear()
    response = server.post("/api/v1/repos", json={
        "name": "group/app", "provider": "gitlab", "clone_url": f"file://{bare}", "webhook_secret": SECRET,
        "status_token": TOKEN, "api_url": f"{status_host.url}/api/v4"})
    assert response.status_code == 201, response.text
    gitlab = json.dumps({"object_kind": "push", "ref": "refs/heads/main", "before": "0" * 40, "after": sha,
                         "checkout_sha": sha, "project": {"id": 7, "path_with_namespace": "group/app",
                                                          "default_branch": "main"},
                         "commits": [{"id": sha, "added": ["ci.yaml"], "modified": [], "removed": []}]}).encode()
    headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": "gl-1", "content-type": "application/json"}
    assert server.post("/api/v1/webhooks/gitlab", content=gitlab,
                       headers={**headers, "X-Gitlab-Token": "wrong"}).status_code == 401
    assert server.post("/api/v1/webhooks/gitlab", content=gitlab,
                       headers={**headers, "X-Gitlab-Token": SECRET}).status_code == 202
    gitlab_run = server.wait(_delivery(server, "gl-1")["run_id"])
    assert gitlab_run["state"] == "failed"  # its steps see no GITHUB_SHA: `test` fails, as it should
    seen = _statuses(status_host, 2)
    assert [r.body["state"] for r in seen] == ["pending", "failed"]
    assert seen[1].path == f"/api/v4/projects/group%2Fapp/statuses/{sha}"
    assert seen[1].headers["private-token"] == TOKEN and seen[1].body["name"] == "worldtree/app-ci"


def test_failing_commit_reports_failure_and_filters_skip(servers: Servers, tmp_path: Path,
                                                         status_host: StatusHost) -> None:
    bare, sha = make_repo(tmp_path, {"ci.yaml": CI.replace("cat hello.txt", "exit 3"), "hello.txt": "x\n"})
    server = servers()
    _register(server, bare, status_host)
    status_host.fail_with = [502, 503]  # the status API is flaky: retried with backoff
    body = github_push("acme/app", f"file://{bare}", sha)
    assert server.post("/api/v1/webhooks/github", content=body,
                       headers=github_headers(SECRET, body, "d-fail")).status_code == 202
    run = server.wait(_delivery(server, "d-fail")["run_id"])
    assert run["state"] == "failed"
    assert [r.body["state"] for r in _statuses(status_host, 2)] == ["pending", "failure"]
    # a retry shows on the commit again: pending, then its own result
    assert server.post(f"/api/v1/runs/{run['id']}/retry").status_code == 202
    server.wait(run["id"], lambda r: r["state"] == "failed" and r["attempt"] == 2)
    assert [r.body["state"] for r in _statuses(status_host, 4)] == ["pending", "failure", "pending", "failure"]
    status_host.requests.clear()

    # only README changed: `paths` keeps the pipeline from running
    work = tmp_path / "work"
    sha2 = commit(work, bare, {"README.md": "docs\n"})
    body = github_push("acme/app", f"file://{bare}", sha2, paths=["README.md"])
    assert server.post("/api/v1/webhooks/github", content=body,
                       headers=github_headers(SECRET, body, "d-docs")).status_code == 202
    skipped = _delivery(server, "d-docs")
    assert skipped["state"] == "skipped" and "paths" in skipped["detail"]
    # another branch: on.push.branches says main only
    body = github_push("acme/app", f"file://{bare}", sha2, ref="refs/heads/feature", paths=["a.py"])
    assert server.post("/api/v1/webhooks/github", content=body,
                       headers=github_headers(SECRET, body, "d-branch")).status_code == 202
    assert "feature" in _delivery(server, "d-branch")["detail"]
    assert server.get("/api/v1/runs").json()["total"] == 1

    # a broken ci.yaml: no run, and the commit says where the file is wrong
    sha3 = commit(work, bare, {"ci.yaml": CI.replace("jobs:", "jobs:\n  b:\n    needs: [nope]\n    steps: [{run: x}]")})
    body = github_push("acme/app", f"file://{bare}", sha3, paths=["ci.yaml"])
    assert server.post("/api/v1/webhooks/github", content=body,
                       headers=github_headers(SECRET, body, "d-broken")).status_code == 202
    broken = _delivery(server, "d-broken")
    assert broken["state"] == "failed" and broken["detail"].startswith("ci.yaml:8:"), broken
    error = _statuses(status_host, 1)[0]
    assert error.path == f"/repos/acme/app/statuses/{sha3}" and error.body["state"] == "error"
    assert "nope" in error.body["description"] and len(error.body["description"]) <= 140
    assert server.get("/api/v1/runs").json()["total"] == 1


def test_bad_signature_unknown_repo_ping_and_the_repos_api(servers: Servers, tmp_path: Path,
                                                           status_host: StatusHost) -> None:
    bare, sha = make_repo(tmp_path, {"ci.yaml": CI})
    server = servers()
    _register(server, bare, status_host)
    body = github_push("acme/app", f"file://{bare}", sha)
    for headers in (github_headers("wrong-secret", body, "d-bad"),
                    {k: v for k, v in github_headers(SECRET, body, "d-bad").items() if k != "X-Hub-Signature-256"},
                    {**github_headers(SECRET, body, "d-bad"), "X-Hub-Signature-256": "sha1=abc"}):
        response = server.post("/api/v1/webhooks/github", content=body, headers=headers)
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "unauthorized"
    tampered = body.replace(b'"main"', b'"evil"')
    assert server.post("/api/v1/webhooks/github", content=tampered,
                       headers=github_headers(SECRET, body, "d-bad")).status_code == 401
    assert server.get("/api/v1/deliveries").json()["items"] == []  # nothing stored
    for headers in ({k: v for k, v in github_headers(SECRET, body, "x").items() if k != "X-GitHub-Delivery"},
                    {k: v for k, v in github_headers(SECRET, body, "x").items() if k != "X-GitHub-Event"}):
        assert server.post("/api/v1/webhooks/github", content=body, headers=headers).status_code == 422
    broken = body.replace(b'"after"', b'"later"')  # signed, but no commit in it
    response = server.post("/api/v1/webhooks/github", content=broken, headers=github_headers(SECRET, broken, "x"))
    assert response.status_code == 422 and "after" in response.json()["error"]["message"]
    assert server.get("/api/v1/deliveries").json()["items"] == []

    other = github_push("someone/else", "file:///nowhere", sha)
    response = server.post("/api/v1/webhooks/github", content=other, headers=github_headers(SECRET, other, "d-x"))
    assert response.status_code == 404 and "not registered" in response.json()["error"]["message"]
    assert server.post("/api/v1/webhooks/bitbucket", content=body,
                       headers=github_headers(SECRET, body, "d-y")).status_code == 404

    ping = json.loads((Path(__file__).parent / "data" / "ping.payload.json").read_text())
    ping["repository"]["full_name"] = "acme/app"
    raw = json.dumps(ping).encode()
    response = server.post("/api/v1/webhooks/github", content=raw, headers=github_headers(SECRET, raw, "p-1", "ping"))
    assert response.status_code == 200 and response.json()["status"] == "pong"
    assert server.get("/api/v1/runs").json()["total"] == 0

    # one delivery sent eight times at once: queued once, the rest duplicates (the store's unique index decides)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: server.post("/api/v1/webhooks/github", content=body,
                                                      headers=github_headers(SECRET, body, "race-1")), range(8)))
    assert sorted(a.status_code for a in answers) == [200] * 7 + [202], [a.text for a in answers]
    assert {a.json()["status"] for a in answers} == {"queued", "duplicate"}
    assert _delivery(server, "race-1")["state"] == "done"
    assert server.get("/api/v1/runs").json()["total"] == 1

    # the repository API never shows a secret; registering twice or a bad name is refused
    listed = server.get("/api/v1/repos")
    assert listed.status_code == 200 and SECRET not in listed.text and TOKEN not in listed.text
    [described] = listed.json()["items"]
    assert described["name"] == "acme/app" and described["status_token"] is True
    again = server.post("/api/v1/repos", json={"name": "acme/app", "provider": "github", "clone_url": "x",
                                               "webhook_secret": "s"})
    assert again.status_code == 409
    bad = server.post("/api/v1/repos", json={"name": "noslash", "provider": "github", "clone_url": "x",
                                             "webhook_secret": "s"})
    assert bad.status_code in (400, 422) and "OWNER/NAME" in bad.json()["error"]["message"]
    assert httpx.delete(f"{server.url}/api/v1/repos/{described['id']}", timeout=30).status_code == 204
    assert server.get("/api/v1/repos").json()["items"] == []
    response = server.post("/api/v1/webhooks/github", content=body, headers=github_headers(SECRET, body, "d-z"))
    assert response.status_code == 404  # removed: its webhooks are unknown again
