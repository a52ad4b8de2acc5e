"""Secrets through a real server: write-only, encrypted at rest, resolved into runs, masked everywhere."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from tests.server.conftest import Server, Servers

pytestmark = pytest.mark.slow  # real server processes: several seconds each

VALUE = "hunter2-Zq8vX-only-in-memory"
DIGEST = hashlib.sha256(VALUE.encode()).hexdigest()
DOC = f"""name: uses-secret
secrets: [DEPLOY_TOKEN]
stages:
  - name: build
    jobs:
      - name: main
        steps:
          - name: show
            command: >-
              echo "token is $DEPLOY_TOKEN";
              test "$(printf %s "$DEPLOY_TOKEN" | sha256sum | cut -c1-64)" = {DIGEST}
"""


def _call(server: Server, method: str, path: str, **kw: object) -> httpx.Response:
    return httpx.request(method, f"{server.url}{path}", timeout=30, **kw)  # type: ignore[arg-type]


def _database_text(servers: Servers, tmp_path: Path) -> str:
    """Every byte of the store: the SQLite files, or every row of every PostgreSQL table as text."""
    if servers.kind == "sqlite":
        db = Path(servers.store.removeprefix("sqlite:///"))
        return "".join(p.read_bytes().decode("latin-1") for p in db.parent.glob(db.name + "*"))
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(servers.store)
    try:
        with engine.connect() as conn:
            tables = inspect(conn).get_table_names()
            return "\n".join(str(row) for table in tables for row in conn.execute(text(f'SELECT * FROM "{table}"')))
    finally:
        engine.dispose()


def test_a_secret_is_write_only_encrypted_resolved_and_masked(servers: Servers, tmp_path: Path) -> None:
    server = servers()
    made = _call(server, "PUT", "/api/v1/secrets/DEPLOY_TOKEN", json={"value": VALUE})
    assert made.status_code == 201, made.text
    assert made.json()["created"] is True and made.json()["name"] == "DEPLOY_TOKEN"
    replaced = _call(server, "PUT", "/api/v1/secrets/DEPLOY_TOKEN", json={"value": VALUE})
    assert replaced.status_code == 200 and replaced.json()["created"] is False
    listed = server.get("/api/v1/secrets").json()["items"]
    assert [s["name"] for s in listed] == ["DEPLOY_TOKEN"] and set(listed[0]) == {"name", "created_at", "updated_at"}

    run_id = server.submit(DOC)
    run = server.wait(run_id)
    assert run["state"] == "succeeded", run  # the step compared the value's digest with the real one's
    lines = [i["line"] for i in server.get(f"/api/v1/runs/{run_id}/logs").json()["items"]]
    assert "token is ***" in lines

    seen = [made.text, replaced.text, server.get("/api/v1/secrets").text, server.get(f"/api/v1/runs/{run_id}").text,
            server.get(f"/api/v1/runs/{run_id}/logs", params={"format": "text"}).text,
            server.get(f"/api/v1/runs/{run_id}/document").text, server.get("/api/v1/audit").text,
            server.get("/openapi.json").text, server.log(), _database_text(servers, tmp_path)]
    assert all(VALUE not in text for text in seen)
    assert "DEPLOY_TOKEN" in seen[-1]  # the database was read: the name is there, the value is not
    key = tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600

    assert _call(server, "DELETE", "/api/v1/secrets/DEPLOY_TOKEN").status_code == 204
    gone = _call(server, "DELETE", "/api/v1/secrets/DEPLOY_TOKEN")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    failed = server.wait(server.submit(DOC))
    assert failed["state"] == "failed"  # a deleted secret no longer resolves
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORLDTREE_")}
    made_by_cli = subprocess.run(  # the CLI writes to the server's store with the data dir's key
        [sys.executable, "-m", "worldtree.cli.main", "secret", "set", "DEPLOY_TOKEN", "--from-env", "THE_VALUE",
         "--store", servers.store, "--data-dir", str(tmp_path / "data")], env={**env, "THE_VALUE": VALUE},
        capture_output=True, text=True, timeout=60)
    assert made_by_cli.returncode == 0 and VALUE not in made_by_cli.stdout + made_by_cli.stderr, made_by_cli.stderr
    assert server.wait(server.submit(DOC))["state"] == "succeeded"
    bad = _call(server, "PUT", "/api/v1/secrets/1-bad name", json={"value": "x"})
    assert bad.status_code == 400 and "secret name" in bad.json()["error"]["message"]
    empty = _call(server, "PUT", "/api/v1/secrets/EMPTY", json={"value": ""})
    assert empty.status_code == 422


def test_a_replica_with_another_key_refuses_to_start(servers: Servers, tmp_path: Path) -> None:
    first = servers(env={"WORLDTREE_SECRET_KEY": Fernet.generate_key().decode()})
    assert _call(first, "PUT", "/api/v1/secrets/DB_PASSWORD", json={"value": VALUE}).status_code == 201
    assert not (tmp_path / "data" / "secret.key").exists()  # the env var wins: no key file made
    first.stop()
    other = Server(servers.store, tmp_path / "other-data", env={"WORLDTREE_SECRET_KEY": Fernet.generate_key().decode()})
    with pytest.raises(AssertionError, match="cannot decrypt") as refused:
        other.start()
    assert "WORLDTREE_SECRET_KEY" in str(refused.value) and VALUE not in str(refused.value)
    assert other.proc is not None and other.proc.returncode not in (0, None)
    # with the key the secrets were written with, another replica starts
    again = Server(servers.store, tmp_path / "again", env={"WORLDTREE_SECRET_KEY": first.env["WORLDTREE_SECRET_KEY"]})
    servers.started.append(again)
    again.start()
    assert [s["name"] for s in again.get("/api/v1/secrets").json()["items"]] == ["DB_PASSWORD"]
