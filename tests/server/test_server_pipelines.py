"""Stored pipelines through a real server: validated like a submit, CRUD, trigger with env, stop."""

from __future__ import annotations

import time

import httpx
import pytest
from tests.server.conftest import Server, Servers, pipeline

pytestmark = pytest.mark.slow  # real server processes: several seconds each


def _call(server: Server, method: str, path: str, **kw: object) -> httpx.Response:
    return httpx.request(method, f"{server.url}{path}", timeout=30, **kw)  # type: ignore[arg-type]


def test_store_list_replace_trigger_delete_and_refuse_invalid(servers: Servers) -> None:
    server = servers()
    doc = pipeline(("greet", "echo hello $WHO"), name="greeter")
    made = _call(server, "POST", "/api/v1/pipelines", content=doc, headers={"content-type": "application/yaml"})
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["name"], body["title"], body["stages"], body["jobs"], body["runs"]) == \
        ("greeter", "greeter", ["build"], ["main"], 0)
    assert made.headers["location"] == "/api/v1/pipelines/greeter"
    again = _call(server, "POST", "/api/v1/pipelines", json={"name": "greeter", "document": doc})
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    other = _call(server, "POST", "/api/v1/pipelines", json={"name": "second", "document": doc})
    assert other.status_code == 201
    listed = server.get("/api/v1/pipelines").json()
    assert [p["name"] for p in listed["items"]] == ["greeter", "second"] and listed["total"] == 2
    assert "document" not in listed["items"][0]

    triggered = _call(server, "POST", "/api/v1/pipelines/greeter/trigger", json={"env": {"WHO": "world"}})
    assert triggered.status_code == 202, triggered.text
    assert triggered.json()["pipeline"] == "greeter" and triggered.json()["state"] == "queued"
    run = server.wait(triggered.json()["id"])
    assert run["state"] == "succeeded"
    lines = [i["line"] for i in server.get(f"/api/v1/runs/{run['id']}/logs").json()["items"]]
    assert lines == ["hello world"]

    replaced = _call(server, "PUT", "/api/v1/pipelines/greeter", content=pipeline(("greet", "echo bye"), name="g2"),
                     headers={"content-type": "application/yaml"})
    assert replaced.status_code == 200 and replaced.json()["title"] == "g2"
    detail = server.get("/api/v1/pipelines/greeter").json()
    assert detail["runs"] == 1 and detail["runs_by_state"] == {"succeeded": 1}
    assert detail["last_run"]["id"] == run["id"] and "echo bye" in detail["document"]

    assert _call(server, "DELETE", "/api/v1/pipelines/second").status_code == 204
    assert server.get("/api/v1/pipelines/second").status_code == 404
    assert _call(server, "POST", "/api/v1/pipelines/second/trigger").status_code == 404
    assert server.get(f"/api/v1/runs/{run['id']}").status_code == 200  # deleting a definition keeps runs

    # an invalid definition: 422 with located diagnostics, nothing stored, an old one kept
    bad = "name: broken\nstages:\n  - name: build\n    jobs:\n      - name: main\n        steps:\n" \
          "          - name: a\n            command: echo a\n            timeout: soon\n"
    refused = _call(server, "POST", "/api/v1/pipelines", content=bad, headers={"content-type": "application/yaml"})
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "invalid_document"
    assert any(d["line"] == 9 and "duration" in d["message"] for d in error["details"])
    assert server.get("/api/v1/pipelines").json()["total"] == 1
    made = _call(server, "POST", "/api/v1/pipelines", json={"name": "ok", "document": pipeline(("a", "echo a"))})
    assert made.status_code == 201
    kept = _call(server, "PUT", "/api/v1/pipelines/ok", json={"document": bad})
    assert kept.status_code == 422
    assert "echo a" in server.get("/api/v1/pipelines/ok").json()["document"]  # the old definition stays
    named = _call(server, "POST", "/api/v1/pipelines", json={"name": "../etc", "document": pipeline(("a", "echo"))})
    assert named.status_code == 400 and "pipeline name" in named.json()["error"]["message"]


def test_stop_cancels_the_pipelines_running_runs_only(servers: Servers) -> None:
    server = servers()
    slow = pipeline(("wait", "sleep 30"), name="slow")
    assert _call(server, "POST", "/api/v1/pipelines", content=slow,
                 headers={"content-type": "application/yaml"}).status_code == 201
    bystander = server.submit(pipeline(("wait", "sleep 30"), name="slow"))  # same name, not triggered by it
    first = _call(server, "POST", "/api/v1/pipelines/slow/trigger").json()["id"]
    server.wait(first, until=lambda r: r["state"] == "running")
    stopped = _call(server, "POST", "/api/v1/pipelines/slow/stop")
    assert stopped.status_code == 202 and stopped.json() == {"pipeline": "slow", "cancelled": [first]}
    assert server.wait(first, timeout=30)["state"] == "cancelled"
    assert server.run(bystander)["state"] in ("queued", "running")
    assert _call(server, "POST", f"/api/v1/runs/{bystander}/cancel").status_code == 202
    deadline = time.monotonic() + 30
    while server.run(bystander)["state"] not in ("cancelled",):
        assert time.monotonic() < deadline
        time.sleep(0.1)
