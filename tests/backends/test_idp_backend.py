"""``engine: idp://…`` end to end: a local ``worldtree run`` whose step runs on a real ``worldtree
server`` (``--auth``), its lines streamed back, its exit code the step's; a bad token; a Ctrl-C that
cancels the remote run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.server.conftest import Servers

from worldtree.testing.stores import store_url

pytestmark = pytest.mark.slow


@pytest.fixture
def sqlite_servers(tmp_path: Path) -> Iterator[Servers]:
    with store_url("sqlite", tmp_path) as url:
        made = Servers(url, "sqlite", tmp_path)
        try:
            yield made
        finally:
            for server in made.started:
                server.stop()


def _token(store: str, role: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORLDTREE_")}
    proc = subprocess.run([sys.executable, "-m", "worldtree.cli.main", "token", "create", "--role", role,
                           "--store", store], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _pipeline(tmp: Path, port: int, command: str) -> Path:
    path = tmp / "pipeline.yaml"
    path.write_text("name: idp-test\njobs:\n  remote:\n    secrets: [TOKEN]\n    steps:\n"
                    f"      - engine: 'idp://ci:${{TOKEN}}@127.0.0.1:{port}'\n"
                    f"        command: {command!r}\n")
    return path


def _local(tmp: Path, pipeline: Path, token: str) -> subprocess.Popen[str]:
    secrets = tmp / "secrets.env"
    secrets.write_text(f"TOKEN={token}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORLDTREE_")}
    env["WORLDTREE_CACHE_DIR"] = str(tmp / "cache")
    return subprocess.Popen([sys.executable, "-m", "worldtree.cli.main", "run", str(pipeline), "--secrets-file",
                             str(secrets)],
                            cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_idp_step_runs_on_the_server_and_fails_with_its_exit_code(sqlite_servers: Servers, tmp_path: Path) -> None:
    token = _token(sqlite_servers.store, "maintainer")
    server = sqlite_servers(args=["--auth"])
    proc = _local(tmp_path, _pipeline(tmp_path, server.port, "echo first-line; echo second-line >&2; exit 3"), token)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err  # a failed run (the step's own code is in its line)
    assert "[remote/step-1] first-line\n[remote/step-1] second-line\n" in out, out + err
    assert "[remote/step-1] failed in" in out and "(exit code 3)" in out, out + err
    assert token not in out + err
    runs = httpx.get(f"{server.url}/api/v1/runs", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    remote = runs["items"][0]
    assert remote["state"] == "failed"
    for path in (f"/api/v1/runs/{remote['id']}", f"/api/v1/runs/{remote['id']}/document", "/api/v1/jobs"):
        shown = httpx.get(f"{server.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert shown.status_code == 200 and token not in shown.text  # the token is the call's, not the job's env


def test_bad_token_is_a_clear_error(sqlite_servers: Servers, tmp_path: Path) -> None:
    viewer = _token(sqlite_servers.store, "viewer")
    server = sqlite_servers(args=["--auth"])
    bad = "wt_not-a-real-token-0123456789"
    proc = _local(tmp_path, _pipeline(tmp_path, server.port, "echo never"), bad)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert f"127.0.0.1:{server.port} refused the token (401)" in out + err, out + err
    assert "Traceback" not in out + err and bad not in out + err and "never" not in out
    other = tmp_path / "viewer"
    other.mkdir()
    proc = _local(other, _pipeline(other, server.port, "echo never"), viewer)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "the token may not run jobs (403): it needs the maintainer role" in out + err, out + err
    assert "Traceback" not in out + err and viewer not in out + err


def test_ctrl_c_cancels_the_remote_run(sqlite_servers: Servers, tmp_path: Path) -> None:
    token = _token(sqlite_servers.store, "maintainer")
    server = sqlite_servers(args=["--auth"])
    auth = {"Authorization": f"Bearer {token}"}
    proc = _local(tmp_path, _pipeline(tmp_path, server.port, "echo started; sleep 60"), token)
    deadline = time.monotonic() + 60
    run_id = None
    while run_id is None and time.monotonic() < deadline:
        items = httpx.get(f"{server.url}/api/v1/runs", headers=auth, timeout=10).json()["items"]
        if items and items[0]["state"] == "running":  # and its command has started
            logs = httpx.get(f"{server.url}/api/v1/runs/{items[0]['id']}/logs", headers=auth, timeout=10).json()
            run_id = items[0]["id"] if any(i["line"] == "started" for i in logs["items"]) else None
        if run_id is None:
            time.sleep(0.2)
    assert run_id is not None, server.log()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "cancelled by SIGINT" in out and token not in out + err and "Traceback" not in err, out + err
    state = None
    while time.monotonic() < deadline:
        state = httpx.get(f"{server.url}/api/v1/runs/{run_id}", headers=auth, timeout=10).json()["state"]
        if state == "cancelled":
            break
        time.sleep(0.2)
    assert state == "cancelled", server.log()
