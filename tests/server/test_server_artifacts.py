"""Artifacts through a real server: collected into the data dir, listed, streamed, purged at start."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from tests.server.conftest import Servers

pytestmark = pytest.mark.slow  # real server processes: several seconds each

DOC = """name: builds
stages:
  - name: build
    jobs:
      - name: compile
        artifacts: {paths: ["dist/*"], expire_in: %s}
        steps:
          - name: make
            command: mkdir -p dist && head -c 300000 /dev/urandom > dist/app.bin && printf 'v1' > dist/VERSION
"""


def test_collected_listed_downloaded_and_purged_when_expired(servers: Servers, tmp_path: Path) -> None:
    server = servers()
    run_id = first = server.submit(DOC % "7d")
    assert server.wait(run_id)["state"] == "succeeded"
    items = server.get(f"/api/v1/runs/{run_id}/artifacts").json()["items"]
    assert sorted((a["job"], a["path"]) for a in items) == [("compile", "dist/VERSION"), ("compile", "dist/app.bin")]
    big = next(a for a in items if a["path"] == "dist/app.bin")
    assert big["size"] == 300000 and big["expires_at"] is not None
    blob = tmp_path / "data" / "artifacts" / big["sha256"][:2] / big["sha256"]
    assert blob.stat().st_size == 300000  # in the server's data dir, named by content
    download = server.get(f"/api/v1/artifacts/{big['id']}")
    assert download.status_code == 200
    assert hashlib.sha256(download.content).hexdigest() == big["sha256"]
    assert download.headers["etag"] == f'"{big["sha256"]}"' and "app.bin" in download.headers["content-disposition"]
    assert server.get(f"/api/v1/runs/{run_id}/artifacts", params={"job": "nope"}).json()["items"] == []
    by_job = server.get(f"/api/v1/jobs/{run_id}:build.compile/artifacts")
    assert by_job.status_code == 200 and {a["id"] for a in by_job.json()["items"]} == {a["id"] for a in items}
    missing = server.get("/api/v1/artifacts/art_0000000000000000")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert server.get("/api/v1/runs/no-such-run/artifacts").status_code == 404

    # expired ones are purged when a server starts (and hourly); the 7-day ones stay
    kept = {a["id"] for a in items}
    run_id = server.submit(DOC % "1s")
    assert server.wait(run_id)["state"] == "succeeded"
    items = server.get(f"/api/v1/runs/{run_id}/artifacts").json()["items"]
    assert len(items) == 2 and not kept & {a["id"] for a in items}
    server.stop()
    server.start()  # the purge pass at start finds them expired (1 s after collection)
    assert server.get(f"/api/v1/runs/{run_id}/artifacts").json()["items"] == []
    assert server.get(f"/api/v1/artifacts/{items[0]['id']}").status_code == 404
    blobs = {p.name for p in (tmp_path / "data" / "artifacts").glob("??/*")}
    assert blobs == {big["sha256"], next(a["sha256"] for a in items if a["path"] == "dist/VERSION")} - {
        a["sha256"] for a in items if a["path"] == "dist/app.bin"}  # random content: only VERSION's is shared
    assert {a["id"] for a in server.get(f"/api/v1/runs/{first}/artifacts").json()["items"]} == kept
