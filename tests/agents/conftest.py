"""Agents tests: a real `worldtree server` with gRPC and real `worldtree agent` processes on loopback.

Heartbeats are short here (``WORLDTREE_AGENT_HEARTBEAT_SECONDS``, lease = 3 missed intervals) so
that loss and requeue happen in seconds; the server fixture runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.server.conftest import Server, Servers, free_port
from tests.server.conftest import servers as servers

HEARTBEAT = 0.5
AGENT_ENV = {"WORLDTREE_AGENT_HEARTBEAT_SECONDS": str(HEARTBEAT), "WORLDTREE_AGENT_MISSED_HEARTBEATS": "3"}


@dataclass
class AgentProc:
    """One `worldtree agent` process."""

    grpc: str
    workdir: Path
    labels: str = ""
    name: str = "agent"
    capacity: int = 1
    token: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    extra: list[str] = field(default_factory=list)

    def start(self) -> AgentProc:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WORLDTREE_")}
        self.log_path = self.workdir.parent / f"agent-{self.name}.log"
        args = [sys.executable, "-m", "worldtree.cli.main", "agent", "--server", self.grpc, "--labels", self.labels,
                "--capacity", str(self.capacity), "--name", self.name, "--workdir", str(self.workdir), *self.extra]
        if self.token:
            args += ["--token", self.token]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, env=env, stdout=log, stderr=log)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def wait_log(self, text: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            time.sleep(0.05)
        raise AssertionError(f"agent {self.name} never logged {text!r}:\n{self.log()}")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGCONT)
        self.proc.kill()
        self.proc.wait(timeout=10)


@dataclass
class Fleet:
    """A server with gRPC and its agents; everything stopped at the end of the test."""

    servers: Servers
    tmp: Path
    server: Server | None = None
    grpc_port: int = field(default_factory=free_port)
    agents: list[AgentProc] = field(default_factory=list)

    @property
    def grpc(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start_server(self, *args: str, env: dict[str, str] | None = None, **kw: Any) -> Server:
        self.server = self.servers(args=["--grpc-port", str(self.grpc_port), "--drain-seconds", "1", *args],
                                   env={**AGENT_ENV, **(env or {})}, **kw)
        return self.server

    def agent(self, name: str, labels: str = "", **kw: Any) -> AgentProc:
        agent = AgentProc(self.grpc, self.tmp / f"work-{name}", labels=labels, name=name, **kw)
        self.agents.append(agent)
        return agent.start()

    def registered(self, count: int, timeout: float = 20) -> list[dict[str, Any]]:
        assert self.server is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            items: list[dict[str, Any]] = self.server.get("/api/v1/agents").json()["items"]
            if sum(1 for a in items if a["online"]) >= count:
                return items
            time.sleep(0.05)
        raise AssertionError(f"{count} agents not online within {timeout} s: "
                             f"{self.server.get('/api/v1/agents').text}\n{self.server.log()}")

    def wait_for(self, what: Callable[[], bool], timeout: float = 20, message: str = "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if what():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out: {message}\n" + "\n".join(a.log() for a in self.agents))


@pytest.fixture
def fleet(servers: Servers, tmp_path: Path) -> Iterator[Fleet]:
    made = Fleet(servers, tmp_path)
    try:
        yield made
    finally:
        for agent in made.agents:
            agent.stop()


def logs(server: Server, run_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = httpx.get(f"{server.url}/api/v1/runs/{run_id}/logs", timeout=30).json()["items"]
    return items
