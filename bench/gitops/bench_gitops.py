"""Benchmark the GitOps path: a signed webhook received → the run queued, p50/p99 over 200 deliveries.

A real ``worldtree server`` (``--executors 0``: runs stay queued, so what is measured is the
gateway and the consumer, not the steps) on a fresh store, a local bare repository with a
``ci.yaml``, and ``--deliveries`` (200) octokit push payloads rewritten to it, each signed
(HMAC-SHA256) with its own delivery id, all for the same commit (the mirror has it after the
first: each delivery still reads the file, evaluates ``on:``, makes a worktree and submits).

Measured:

- ``accept``  the webhook's HTTP round trip (verify the signature, parse, store the delivery,
  queue it; 202), client side;
- ``queued``  from the delivery's ``received_at`` to its run's ``created_at`` (both written by the
  server, same clock): queue wait, git, ``on:``, checkout and submit.

Two modes: ``paced`` (the next delivery only after the previous one's run exists: latency with
an empty queue) and ``burst`` (all deliveries as fast as the client sends them: the queue fills,
so ``queued`` includes the wait behind earlier deliveries; throughput = deliveries / span).

Usage: ``python bench/gitops/bench_gitops.py [--deliveries 200] [--store URL] [--events nats://…] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "gitops"))
from gitops_fakes import github_headers, github_push, make_repo  # noqa: E402

SECRET = "bench-secret"
CI = "name: bench\non:\n  push:\n    branches: [main]\njobs:\n  a:\n    steps:\n      - run: 'true'\n"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _times(store_url: str) -> dict[str, float]:
    """delivery id → seconds from received_at to the run's created_at (read from the store)."""
    from sqlalchemy import create_engine, text

    from worldtree.store.rows import utc_value

    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT d.delivery_id, d.received_at, r.created_at FROM git_deliveries d "
                                     "JOIN runs r ON r.id = d.run_id")).fetchall()
    finally:
        engine.dispose()
    out = {}
    for delivery_id, received, created in rows:
        start, end = utc_value(received), utc_value(created)
        assert start is not None and end is not None
        out[str(delivery_id)] = (end - start).total_seconds()
    return out


def run(mode: str, count: int, store: str | None, events: str | None, work: Path) -> dict[str, Any]:
    bare, sha = make_repo(work, {"ci.yaml": CI})
    data = work / "data"
    store_url = store or f"sqlite:///{data}/worldtree.db"
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORLDTREE_")}
    args = [sys.executable, "-m", "worldtree.cli.main", "server", "--port", str(port), "--data-dir", str(data),
            "--store", store_url, "--executors", "0"] + (["--events", events] if events else [])
    with open(work / "server.log", "wb") as log:
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=log)
        try:
            accept, span = _drive(f"http://127.0.0.1:{port}", mode, count, bare, sha)
        finally:
            proc.terminate()
            proc.wait(30)
    queued = list(_times(store_url).values())
    assert len(queued) == count, f"{len(queued)} runs for {count} deliveries"
    return {"mode": mode, "deliveries": count, "accept_p50_ms": _pct(accept, 0.5) * 1000,
            "accept_p99_ms": _pct(accept, 0.99) * 1000, "queued_p50_ms": _pct(queued, 0.5) * 1000,
            "queued_p99_ms": _pct(queued, 0.99) * 1000, "queued_mean_ms": statistics.mean(queued) * 1000,
            "span_s": span, "per_s": count / span}


def _drive(url: str, mode: str, count: int, bare: Path, sha: str) -> tuple[list[float], float]:
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(300):
            try:
                if client.get("/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        client.post("/api/v1/repos", json={"name": "bench/app", "provider": "github",
                                           "clone_url": f"file://{bare}", "webhook_secret": SECRET}).raise_for_status()
        body = github_push("bench/app", f"file://{bare}", sha)
        accept: list[float] = []
        started = time.perf_counter()
        for number in range(count):
            headers = github_headers(SECRET, body, f"{mode}-{number}")
            t0 = time.perf_counter()
            response = client.post("/api/v1/webhooks/github", content=body, headers=headers)
            accept.append(time.perf_counter() - t0)
            assert response.status_code == 202, response.text
            if mode == "paced":
                _wait(client, 1 + number)
        _wait(client, count)
        return accept, time.perf_counter() - started


def _wait(client: httpx.Client, runs: int) -> None:
    deadline = time.monotonic() + 300
    while client.get("/api/v1/runs", params={"page_size": 1}).json()["total"] < runs:
        if time.monotonic() > deadline:
            raise SystemExit(f"fewer than {runs} runs after 300 s")
        time.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=200)
    parser.add_argument("--store", help="store URL (default: SQLite in a temporary directory)")
    parser.add_argument("--events", help="nats://… (JetStream) instead of the store queue")
    parser.add_argument("--modes", default="paced,burst")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    results = []
    for mode in options.modes.split(","):
        with tempfile.TemporaryDirectory(prefix="wt-bench-gitops-") as tmp:
            results.append(run(mode, options.deliveries, options.store, options.events, Path(tmp)))
    if options.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'mode':<6} {'n':>4} {'accept p50':>11} {'accept p99':>11} {'queued p50':>11} {'queued p99':>11} "
          f"{'deliveries/s':>13}")
    for r in results:
        print(f"{r['mode']:<6} {r['deliveries']:>4} {r['accept_p50_ms']:>9.1f}ms {r['accept_p99_ms']:>9.1f}ms "
              f"{r['queued_p50_ms']:>9.1f}ms {r['queued_p99_ms']:>9.1f}ms {r['per_s']:>13.1f}")


if __name__ == "__main__":
    main()
