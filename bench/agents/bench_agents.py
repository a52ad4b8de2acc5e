"""Agents benchmark (issue 9): dispatch latency, throughput through N agents, heartbeat CPU share.

Runs a real ``worldtree server`` (SQLite in a temp dir, or ``--store URL``) with gRPC, and real
``worldtree agent`` processes on loopback:

* **dispatch latency**: a chain of ``--chain`` jobs (each ``needs`` the previous one, so each
  becomes ready when its agent is idle), one step each printing the wall clock when it starts;
  latency = that time - the step's ``started_at`` as the server's engine recorded it (the moment
  it dispatched the step). p50/p99 over the chain.
* **throughput**: ``--jobs`` independent one-step (``true``) jobs through ``--agents`` agents;
  jobs/s = jobs / (run finished - run started).
* **heartbeat CPU share**: ``--fake-agents`` simulated agents (gRPC clients in this process, each
  registering and heartbeating every ``--heartbeat`` s) against the server; the server process's
  CPU share over ``--seconds`` seconds (percent of one core), beside the same server's idle share
  (executors and schedulers polling) over as long before the agents register.

Usage: ``.venv/bin/python bench/agents/bench_agents.py [--chain 200] [--jobs 300] [--agents 10]
[--fake-agents 200] [--heartbeat 10] [--seconds 30]``. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORLDTREE_")}
    env.update(extra)
    return env


class Bench:
    def __init__(self, tmp: Path, store: str | None, heartbeat: float) -> None:
        self.tmp = tmp
        self.port, self.grpc_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.store = store or f"sqlite:///{tmp}/bench.db"
        self.env = _env({"WORLDTREE_AGENT_HEARTBEAT_SECONDS": str(heartbeat)})
        self.procs: list[subprocess.Popen[bytes]] = []
        self.server: subprocess.Popen[bytes] | None = None

    def start_server(self) -> None:
        log = open(self.tmp / "server.log", "ab")  # noqa: SIM115 (lives as long as the process)
        self.server = subprocess.Popen(
            [sys.executable, "-m", "worldtree.cli.main", "server", "--port", str(self.port), "--grpc-port",
             str(self.grpc_port), "--store", self.store, "--data-dir", str(self.tmp / "data"), "--no-auth"],
            env=self.env, stdout=log, stderr=log)
        self.procs.append(self.server)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"server not ready: {(self.tmp / 'server.log').read_text()}")

    def start_agents(self, count: int, labels: str = "pool=bench") -> None:
        for n in range(count):
            log = open(self.tmp / f"agent-{n}.log", "ab")  # noqa: SIM115
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "worldtree.cli.main", "agent", "--server", f"127.0.0.1:{self.grpc_port}",
                 "--labels", labels, "--name", f"bench-{n}", "--workdir", str(self.tmp / f"w{n}")],
                env=self.env, stdout=log, stderr=log))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            items = httpx.get(f"{self.url}/api/v1/agents", timeout=10).json()["items"]
            if sum(1 for a in items if a["online"]) >= count:
                return
            time.sleep(0.2)
        raise SystemExit("agents did not register")

    def submit(self, document: str) -> str:
        r = httpx.post(f"{self.url}/api/v1/runs", content=document.encode(),
                       headers={"content-type": "application/yaml"}, timeout=60)
        r.raise_for_status()
        return str(r.json()["id"])

    def wait(self, run_id: str, timeout: float = 900) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run: dict[str, Any] = httpx.get(f"{self.url}/api/v1/runs/{run_id}", timeout=30).json()
            if run["state"] not in ("queued", "running", "pending"):
                return run
            time.sleep(0.25)
        raise SystemExit(f"run {run_id} did not end")

    def logs(self, run_id: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = httpx.get(f"{self.url}/api/v1/runs/{run_id}/logs", params={"offset": offset, "limit": 5000},
                             timeout=60).json()
            out += page["items"]
            if not page["items"] or page.get("next_offset") in (None, offset):
                return out
            offset = page["next_offset"]

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def latency(bench: Bench, chain: int) -> dict[str, float]:
    lines = ["name: chain", "jobs:"]
    for n in range(chain):
        lines.append(f"  j{n}:")
        lines.append("    labels: {pool: bench}")
        if n:
            lines.append(f"    needs: [j{n - 1}]")
        lines.append("    steps: ['date +%s.%N']")
    run_id = bench.submit("\n".join(lines) + "\n")
    run = bench.wait(run_id)
    assert run["state"] == "succeeded", run["state"]
    started = {n["id"]: _ts(n["started_at"]) for n in run["nodes"]}
    delays = sorted((float(x["line"]) - started[x["node"]]) * 1000 for x in bench.logs(run_id)
                    if x["node"] in started)
    return {"jobs": len(delays), "p50_ms": round(statistics.median(delays), 1),
            "p99_ms": round(delays[min(len(delays) - 1, int(len(delays) * 0.99))], 1),
            "max_ms": round(delays[-1], 1)}


def throughput(bench: Bench, jobs: int) -> dict[str, float]:
    lines = ["name: wide", "jobs:"]
    for n in range(jobs):
        lines += [f"  j{n}:", "    labels: {pool: bench}", "    steps: ['true']"]
    run_id = bench.submit("\n".join(lines) + "\n")
    run = bench.wait(run_id)
    assert run["state"] == "succeeded", run["state"]
    took = _ts(run["finished_at"]) - _ts(run["started_at"])
    return {"jobs": jobs, "seconds": round(took, 2), "jobs_per_s": round(jobs / took, 1)}


async def _fake_agents(grpc: str, count: int, heartbeat: float, seconds: float) -> int:
    import grpc.aio as aio

    from worldtree.api.agent.v1 import agent_pb2 as apb
    from worldtree.api.agent.v1 import agent_pb2_grpc

    beats = 0
    async with aio.insecure_channel(grpc) as channel:
        stub = agent_pb2_grpc.AgentServiceStub(channel)
        ids = []
        for n in range(count):
            r = await stub.Register(apb.RegisterRequest(protocol_version=apb.PROTOCOL_VERSION_V1, name=f"fake-{n}",
                                                        labels={"pool": "fake"}, capacity=1,
                                                        host=apb.HostInfo(hostname=f"fake-{n}", cpus=1)))
            ids.append((r.agent_id, r.session_secret))
        end = time.monotonic() + seconds

        async def one(agent: tuple[str, str], offset: float) -> None:
            agent_id, secret = agent
            nonlocal beats
            await asyncio.sleep(offset)
            while time.monotonic() < end:
                await stub.Heartbeat(apb.HeartbeatRequest(agent_id=agent_id, metrics=apb.AgentMetrics(cpu_percent=1)),
                                     metadata=(("x-worldtree-agent-secret", secret),))
                beats += 1
                await asyncio.sleep(heartbeat)

        await asyncio.gather(*(one(a, heartbeat * i / count) for i, a in enumerate(ids)))
    return beats


def heartbeat_share(bench: Bench, count: int, heartbeat: float, seconds: float) -> dict[str, float]:
    assert bench.server is not None
    proc = psutil.Process(bench.server.pid)
    time.sleep(1.0)
    idle_before, idle_started = proc.cpu_times(), time.monotonic()
    time.sleep(seconds)  # the baseline: the same server with nobody heartbeating
    idle_after = proc.cpu_times()
    idle = ((idle_after.user - idle_before.user) + (idle_after.system - idle_before.system)) / (
        time.monotonic() - idle_started)
    before = proc.cpu_times()
    started = time.monotonic()
    beats = asyncio.run(_fake_agents(f"127.0.0.1:{bench.grpc_port}", count, heartbeat, seconds))
    after = proc.cpu_times()
    wall = time.monotonic() - started
    cpu = (after.user - before.user) + (after.system - before.system)
    return {"agents": count, "heartbeat_s": heartbeat, "seconds": round(wall, 1), "heartbeats": beats,
            "server_cpu_percent_of_one_core": round(100 * cpu / wall, 1),
            "idle_server_cpu_percent_of_one_core": round(100 * idle, 1),
            "cpu_ms_per_heartbeat": round(1000 * (cpu - idle * wall) / max(beats, 1), 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chain", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=300)
    ap.add_argument("--agents", type=int, default=10)
    ap.add_argument("--fake-agents", type=int, default=200)
    ap.add_argument("--heartbeat", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--store", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="wt-bench-agents-") as tmp:
        bench = Bench(Path(tmp), args.store, heartbeat=args.heartbeat)
        try:
            bench.start_server()
            result: dict[str, Any] = {"store": bench.store.split(":", 1)[0]}
            if args.chain:
                bench.start_agents(1)
                result["dispatch_latency"] = latency(bench, args.chain)
            if args.jobs:
                bench.start_agents(max(0, args.agents - (1 if args.chain else 0)))
                result["throughput"] = throughput(bench, args.jobs)
            if args.fake_agents:
                result["heartbeats"] = heartbeat_share(bench, args.fake_agents, args.heartbeat, args.seconds)
            print(json.dumps(result, indent=2))
        finally:
            bench.stop()


if __name__ == "__main__":
    main()
