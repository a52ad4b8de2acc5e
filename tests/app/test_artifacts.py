"""Job artifacts in local `worldtree run`: collected when the job ends, content-addressed, listed,
opened, restored, refused when they leave the workspace, purged when expired (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from worldtree.app import artifacts
from worldtree.model.artifacts import ArtifactRule
from worldtree.store import RunStore, open_store
from worldtree.testing.stores import pg_unavailable_reason, store_url

DOC = """name: arts
stages:
  - name: build
    jobs:
      - name: compile
        artifacts:
          paths: ["out/**", "report.txt"]
          expire_in: 2d
        steps:
          - name: make
            command: >-
              mkdir -p out/sub && printf alpha > out/a.txt && printf beta > out/sub/b.bin
              && printf alpha > report.txt && printf no > other.txt
      - name: leak
        artifacts: [leak.txt]
        steps:
          - name: link
            command: ln -sf %s leak.txt
      - name: broken
        allow_failure: true
        artifacts: {paths: [crash.log], when: on_failure}
        steps:
          - name: crash
            command: echo dump > crash.log; exit 1
"""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "postgres" and pg_unavailable_reason():
        pytest.skip(f"NOT TESTED ON POSTGRESQL: {pg_unavailable_reason()}")
    monkeypatch.chdir(tmp_path)  # a PostgreSQL store keeps blobs in ./.worldtree/artifacts
    with store_url(request.param, tmp_path) as value:
        yield value


@pytest.fixture
def store(url: str) -> Iterator[RunStore]:
    opened = open_store(url)
    yield opened
    opened.close()


def _run(tmp_path: Path, url: str, text: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "p.yaml").write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORLDTREE_")}
    env["WORLDTREE_STORE"] = url
    command = [sys.executable, "-m", "worldtree.cli.main", "run", "p.yaml", "--workdir", str(tmp_path / "ws")]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_a_local_run_collects_lists_opens_and_restores(tmp_path: Path, url: str, store: RunStore) -> None:
    outside = tmp_path / "secret-outside.txt"
    outside.write_text("not yours")
    done = _run(tmp_path, url, DOC % outside)
    assert done.returncode == 0, done.stderr + done.stdout
    run_id = store.list_runs(limit=1)[0].run_id
    found = artifacts.list_artifacts(store, run_id)
    assert sorted((a.job, a.path, a.size) for a in found) == [
        ("broken", "crash.log", 5), ("compile", "out/a.txt", 5), ("compile", "out/sub/b.bin", 4),
        ("compile", "report.txt", 5)]
    compiled = [a for a in found if a.job == "compile"]
    assert all(a.expires_at is not None and timedelta(days=1.9) < a.expires_at - a.created_at < timedelta(days=2.1)
               for a in compiled)
    same = {a.sha256 for a in compiled if a.path in ("out/a.txt", "report.txt")}
    assert same == {hashlib.sha256(b"alpha").hexdigest()}  # one blob for identical content
    blob = artifacts.artifacts_root(store) / next(iter(same))[:2] / next(iter(same))
    assert blob.read_bytes() == b"alpha"
    opened, content = artifacts.open_artifact(store, compiled[0].id)
    with content:
        assert hashlib.sha256(content.read()).hexdigest() == opened.sha256
    # the symlink leading out of the workspace: refused, said in the job's log, nothing stored
    assert "lead outside the workspace" in done.stdout and "leak.txt" in done.stdout
    assert not [a for a in found if a.job == "leak"] and "not yours" not in done.stdout
    restored = artifacts.restore(store, run_id, ["compile"], tmp_path / "next")
    assert restored == ["out/a.txt", "out/sub/b.bin", "report.txt"]
    assert (tmp_path / "next" / "out" / "sub" / "b.bin").read_bytes() == b"beta"
    assert artifacts.list_artifacts(store, run_id, job="compile") == compiled


def test_purge_removes_expired_records_and_unreferenced_blobs(tmp_path: Path, store: RunStore) -> None:
    run_id = store.create_run(name="p", source=None, workdir=str(tmp_path), graph_json='{"name": "p", "nodes": []}',
                              options={})
    ws = tmp_path / "ws"
    (ws / "d").mkdir(parents=True)
    (ws / "d" / "short.txt").write_text("shared")
    (ws / "d" / "long.txt").write_text("shared")
    (ws / "d" / "only-short.txt").write_text("mine")
    short = artifacts.collect(store, run_id, 1, "a", ws, ArtifactRule(paths=["d/*short.txt"], expire_in="1h"))
    kept = artifacts.collect(store, run_id, 1, "b", ws, ArtifactRule(paths=["d/long.txt"], expire_in="never"))
    assert kept[0].expires_at is None
    root = artifacts.artifacts_root(store)
    assert artifacts.purge(store, now=datetime.now(UTC)) == 0
    assert artifacts.purge(store, now=datetime.now(UTC) + timedelta(hours=2)) == 2
    assert [a.path for a in artifacts.list_artifacts(store, run_id)] == ["d/long.txt"]
    mine = hashlib.sha256(b"mine").hexdigest()
    shared = hashlib.sha256(b"shared").hexdigest()
    assert not (root / mine[:2] / mine).exists()  # nobody points at it any more
    assert (root / shared[:2] / shared).read_text() == "shared"  # still referenced by b's artifact
    assert {a.sha256 for a in short} == {mine, shared}
    # a blob written again after its expired record was made (a collection under way elsewhere whose
    # record is not in yet) survives the purge of that record
    (ws / "again.txt").write_text("again")
    again = artifacts.collect(store, run_id, 2, "c", ws, ArtifactRule(paths=["again.txt"], expire_in="1h"))
    blob = root / again[0].sha256[:2] / again[0].sha256
    later = again[0].created_at.timestamp() + 5
    os.utime(blob, (later, later))
    assert artifacts.purge(store, now=datetime.now(UTC) + timedelta(hours=2)) == 1
    assert blob.exists()


@pytest.mark.parametrize(("paths", "expire", "message"), [
    ('["../up.txt"]', "7d", "leaves the workspace"),
    ('["/etc/passwd"]', "7d", "is absolute"),
    ('["ok/*"]', "soon", "invalid duration"),
    ('[]', "7d", "at least 1 item"),
])
def test_bad_artifact_paths_and_durations_are_located_errors(tmp_path: Path, paths: str, expire: str,
                                                             message: str) -> None:
    doc = (f"name: bad\nstages:\n  - name: s\n    jobs:\n      - name: j\n        artifacts:\n"
           f"          paths: {paths}\n          expire_in: {expire}\n        steps:\n          - command: echo\n")
    (tmp_path / "bad.yaml").write_text(doc)
    done = subprocess.run([sys.executable, "-m", "worldtree.cli.main", "validate", "bad.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    line = 8 if "duration" in message else 7
    assert done.stderr.startswith(f"bad.yaml:{line}:"), done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_matching_walks_once_without_following_link_loops(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "dist" / "deep" / "er").mkdir(parents=True)
    (ws / "dist" / "deep" / "er" / "x.log").write_text("x")
    (ws / "dist" / ".hidden").write_text("h")
    (ws / "top.log").write_text("t")
    for name in ("loop1", "loop2"):  # two self-links: following them would be 2^depth paths
        (ws / "dist" / name).symlink_to(ws / "dist")
    (ws / "inside").symlink_to(ws / "top.log")
    assert artifacts.matches(ws, ArtifactRule(paths=["dist"])) == ["dist/.hidden", "dist/deep/er/x.log"]
    assert artifacts.matches(ws, ArtifactRule(paths=["**/*.log", "inside"])) == [
        "dist/deep/er/x.log", "inside", "top.log"]
    assert artifacts.matches(ws, ArtifactRule(paths=["nothing/*"])) == []
    (ws / "dist" / "away").symlink_to(tmp_path)
    with pytest.raises(artifacts.ArtifactError, match="dist/away"):
        artifacts.matches(ws, ArtifactRule(paths=["dist/*"]))


def test_an_uploaded_file_is_stored_like_a_collected_one(tmp_path: Path, store: RunStore) -> None:
    import io

    run_id = store.create_run(name="p", source=None, workdir=str(tmp_path), graph_json='{"name": "p", "nodes": []}',
                              options={})
    made = artifacts.add_file(store, run_id, 1, "remote", "./dist/app.bin", io.BytesIO(b"from an agent"))
    assert (made.path, made.size, made.sha256) == ("dist/app.bin", 13, hashlib.sha256(b"from an agent").hexdigest())
    assert artifacts.list_artifacts(store, run_id) == [made]
    for bad in ("../x", "/etc/passwd", "dist/*"):
        with pytest.raises(artifacts.ArtifactError):
            artifacts.add_file(store, run_id, 1, "remote", bad, io.BytesIO(b"x"))
    assert artifacts.restore(store, run_id, ["remote"], tmp_path / "ws") == ["dist/app.bin"]
    assert (tmp_path / "ws" / "dist" / "app.bin").read_bytes() == b"from an agent"
