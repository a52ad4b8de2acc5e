"""Tokens and roles on a real server (``--auth``): the role matrix comes from the route table."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tests.server.conftest import Server, Servers, pipeline

ROLES = ("viewer", "maintainer", "admin")


def _token(servers: Servers, role: str, *extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORLDTREE_")}
    proc = subprocess.run([sys.executable, "-m", "worldtree.cli.main", "token", "create", "--role", role,
                           "--store", servers.store, *extra], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.strip()
    assert token.startswith("wt_") and token not in proc.stderr
    return token


def _call(server: Server, method: str, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kwargs: dict[str, object] = {}
    if path == "/api/v1/runs" and method == "POST":
        kwargs["content"] = pipeline(("a", "echo a"))
        headers["content-type"] = "application/yaml"
    elif path == "/api/v1/tokens" and method == "POST":
        kwargs["json"] = {"role": "viewer", "name": "made by the matrix"}
    with httpx.stream(method, f"{server.url}{path}", headers=headers, timeout=30, **kwargs) as response:  # type: ignore[arg-type]
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            response.read()  # an event stream (GET /events) may never end: its status is the answer
        return response


def test_every_protected_route_enforces_its_role(servers: Servers) -> None:
    tokens = {role: _token(servers, role) for role in ROLES}
    server = servers(args=["--auth"])
    run_id = server.submit(pipeline(("a", "echo a")), headers={"Authorization": f"Bearer {tokens['maintainer']}"})
    auth = {"Authorization": f"Bearer {tokens['viewer']}"}
    deadline = time.monotonic() + 30
    while httpx.get(f"{server.url}/api/v1/runs/{run_id}", headers=auth).json()["state"] != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    spec = httpx.get(f"{server.url}/openapi.json").json()
    checked = 0
    for template, operations in spec["paths"].items():
        for method, operation in operations.items():
            needed = operation.get("x-required-role")
            path = template.replace("{run_id}", run_id).replace("{token_id}", "tok_000000000000")
            if needed is None:
                assert template in ("/healthz", "/readyz", "/metrics", "/api/v1/webhooks/{provider}"), \
                    f"{method} {template} has no role"  # a webhook's signature is its authentication
                continue
            assert _call(server, method.upper(), path, None).status_code == 401
            assert _call(server, method.upper(), path, "wt_not-a-real-token").status_code == 401
            for role in ROLES:
                status = _call(server, method.upper(), path, tokens[role]).status_code
                if ROLES.index(role) < ROLES.index(needed):
                    assert status == 403, (method, template, role)
                else:
                    assert status not in (401, 403), (method, template, role, status)
                checked += 1
    assert checked >= 3 * 11


def test_basic_auth_revocation_and_expiry(servers: Servers) -> None:
    admin = _token(servers, "admin")
    short = _token(servers, "viewer", "--expires", "1s")
    server = servers(args=["--auth"])
    basic = base64.b64encode(f"anyone:{admin}".encode()).decode()
    assert server.get("/api/v1/runs", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    made = server.post("/api/v1/tokens", json={"role": "maintainer", "name": "ci"},
                       headers={"Authorization": f"Bearer {admin}"})
    assert made.status_code == 201
    body = made.json()
    listed = server.get("/api/v1/tokens", headers={"Authorization": f"Bearer {admin}"}).json()["items"]
    assert {t["id"] for t in listed} >= {body["id"]}
    assert all("token" not in t and body["token"] not in str(t) for t in listed)  # never shown again
    ci = {"Authorization": f"Bearer {body['token']}"}
    assert server.get("/api/v1/runs", headers=ci).status_code == 200
    revoked = httpx.delete(f"{server.url}/api/v1/tokens/{body['id']}", headers={"Authorization": f"Bearer {admin}"},
                           timeout=30)
    assert revoked.status_code == 204
    refused = server.get("/api/v1/runs", headers=ci)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    assert "Bearer" in refused.headers["www-authenticate"]
    time.sleep(1.2)
    assert server.get("/api/v1/runs", headers={"Authorization": f"Bearer {short}"}).status_code == 401
    refused_post = server.post("/api/v1/runs/nope/cancel", headers=ci)
    assert refused_post.status_code == 401
    audit = server.get("/api/v1/audit", headers={"Authorization": f"Bearer {admin}"}).json()
    actions = [(e["action"], e["target"], e["status"], e["role"]) for e in audit["items"]]
    assert actions == [("POST /api/v1/runs/{run_id}/cancel", "nope", 401, None),
                       ("DELETE /api/v1/tokens/{token_id}", body["id"], 204, "admin"),
                       ("POST /api/v1/tokens", None, 201, "admin")]
    assert audit["items"][1]["actor"].startswith("tok_") and audit["items"][0]["actor"] == "anonymous"
    assert {e["client"] for e in audit["items"]} == {"127.0.0.1"}
    viewer_audit = server.get("/api/v1/audit", headers={"Authorization": f"Bearer {body['token']}"})
    assert viewer_audit.status_code == 401


def test_client_sends_its_token(servers: Servers, tmp_path: Path) -> None:
    token = _token(servers, "maintainer")
    server = servers(args=["--auth"])
    (tmp_path / "ok.yaml").write_text(pipeline(("hello", "echo hello")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORLDTREE_")}
    env["WORLDTREE_SERVER"] = server.url
    command = [sys.executable, "-m", "worldtree.cli.main", "client", "run", "ok.yaml"]
    refused = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "authentication required" in refused.stderr
    env["WORLDTREE_TOKEN"] = token
    ok = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "build/main/hello | hello" in ok.stdout
