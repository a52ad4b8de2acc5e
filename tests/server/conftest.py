"""Server tests run real `worldtree server` processes (uvicorn) on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from worldtree.testing.stores import pg_unavailable_reason, store_url

FINAL = ("succeeded", "failed", "cancelled", "timed_out", "error")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """One `worldtree server` process; ``start`` again after ``kill9`` to restart it on the same port."""

    store: str
    data_dir: Path
    executors: int = 2
    lease_seconds: float = 30.0
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WORLDTREE_")}
        env.update(self.env)
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "worldtree.cli.main", "server", "--port", str(self.port),
                 "--store", self.store, "--data-dir", str(self.data_dir), "--executors", str(self.executors),
                 "--lease-seconds", str(self.lease_seconds), *self.args], env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}: {self.log()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready within 30 s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    # -- API helpers ---------------------------------------------------------------------------
    def submit(self, document: str, **kw: Any) -> str:
        headers = {"content-type": "application/yaml", **kw.pop("headers", {})}
        response = httpx.post(f"{self.url}/api/v1/runs", content=document.encode(), headers=headers, timeout=30,
                              **kw)
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["state"] == "queued"
        return str(body["id"])

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=30, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", timeout=30, **kw)

    def run(self, run_id: str) -> dict[str, Any]:
        response = self.get(f"/api/v1/runs/{run_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def wait(self, run_id: str, until: Callable[[dict[str, Any]], bool] = lambda r: r["state"] in FINAL,
             timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.run(run_id)
            if until(run):
                return run
            time.sleep(0.1)
        raise AssertionError(f"run {run_id} did not get there within {timeout} s: {self.run(run_id)}\n{self.log()}")


@dataclass
class Servers:
    """Starts servers on one store; stops them all at the end of the test."""

    store: str
    kind: str
    tmp: Path
    started: list[Server] = field(default_factory=list)

    def __call__(self, **kw: Any) -> Server:
        server = Server(self.store, self.tmp / "data", **kw)
        self.started.append(server)
        return server.start()


@pytest.fixture(params=["sqlite", "postgres"])
def servers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Servers]:
    if request.param == "postgres":
        reason = pg_unavailable_reason()
        if reason:
            pytest.skip(f"!!! PostgreSQL tests skipped: {reason}")
    with store_url(request.param, tmp_path) as url:
        made = Servers(url, request.param, tmp_path)
        try:
            yield made
        finally:
            for server in made.started:
                server.stop()


@pytest.fixture
def pg_servers(tmp_path: Path) -> Iterator[Servers]:
    reason = pg_unavailable_reason()
    if reason:
        pytest.skip(f"!!! PostgreSQL tests skipped: {reason}")
    with store_url("postgres", tmp_path) as url:
        made = Servers(url, "postgres", tmp_path)
        try:
            yield made
        finally:
            for server in made.started:
                server.stop()


def pipeline(*steps: tuple[str, str], name: str = "demo") -> str:
    """A one-job document whose steps run in order."""
    lines = [f"name: {name}", "stages:", "  - name: build", "    jobs:", "      - name: main", "        steps:"]
    for step, command in steps:
        lines += [f"          - name: {step}", f"            command: {json.dumps(command)}"]
    return "\n".join(lines) + "\n"
