"""Server benchmark (issue 8): latency, throughput, read latency, log followers, replicas.

Real ``worldtree server`` processes on loopback (``--no-auth``, gRPC off), each on a fresh store:
a SQLite file in a temp dir, and with ``--pg`` also a new database on the PostgreSQL at
``--pg-url`` (dropped afterwards). Every contender runs in the same invocation, so ratios compare
like with like on a shared machine.

1. **submit -> first step started**: ``--latency-runs`` one-step runs, one at a time, each
   submitted only when the previous has ended (the executor is idle); latency = the node's
   ``started_at`` (server clock) - the wall clock just before the POST (same machine). p50/p99.
2. **throughput**: ``--runs`` one-step (``true``) runs submitted at once (8 threads POSTing), drained by one server
   with ``--executors`` (2); runs/s = runs / (last ``finished_at`` - first POST). Anchor: the same
   number of ``worldtree run one.yaml`` in a shell loop (``for``), runs/s and server/anchor ratio.
3. **GET /api/v1/runs/{id}**: paced at ``--rate`` (200) requests/s for ``--seconds`` (10) with an
   async httpx client (at most ``--inflight`` outstanding; a request that would exceed it counts
   as dropped). Latency from the request's scheduled time (no coordinated omission) p50/p99,
   and from its actual send.
4. **log followers**: a step printing ``--lines`` (200,000) lines, once with nobody following and
   once with ``--followers`` (50) SSE clients on ``/logs/stream`` from the submit on. Followers
   read raw chunks (no per-event parsing, so the client is cheap) and sample the lag of the last
   event of each chunk (receive time - the line's ``ts``). The run's duration (node
   ``finished_at - started_at``) with followers / without = the slowdown. Followers still behind
   ``--follow-grace`` s after the run ended are cut off and reported.
5. **replicas** (PostgreSQL only): (2) again with two servers on one database, submissions split
   across both, against one server on its own fresh database; ratio two/one.

Every loop is bounded by count and time. Every process started here runs in its own session
and is killed by its process group id at the end, also on Ctrl-C, SIGTERM or an exception.

Usage: ``.venv/bin/python bench/server/bench_server.py [--quick] [--pg] [--json]`` (see --help).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

FINAL = ("succeeded", "failed", "cancelled", "timed_out", "error")
ONE_STEP = "name: one\njobs:\n  a:\n    steps: ['true']\n"
PROCS: list[subprocess.Popen[bytes]] = []
SUBMITTERS = 8


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("WORLDTREE_")}


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 1) if ordered else float("nan")


def kill_all() -> None:
    """SIGKILL every process group started here (each child is its own session leader)."""
    for proc in reversed(PROCS):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
    PROCS.clear()


class Server:
    """One ``worldtree server`` process on a free loopback port."""

    def __init__(self, store: str, data_dir: Path, executors: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = data_dir.parent / f"server-{self.port}.log"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "worldtree.cli.main", "server", "--port", str(self.port), "--grpc-port", "-1",
                 "--store", store, "--data-dir", str(data_dir), "--executors", str(executors), "--no-auth"],
                env=_env(), stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        PROCS.append(self.proc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited {self.proc.returncode}: {self.log.read_text(errors='replace')}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"server not ready in 60 s: {self.log.read_text(errors='replace')}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def submit(self, client: httpx.Client, document: str) -> str:
        r = client.post(f"{self.url}/api/v1/runs", content=document.encode(),
                        headers={"content-type": "application/yaml"})
        if r.status_code != 202:
            raise SystemExit(f"submit: {r.status_code} {r.text}")
        return str(r.json()["id"])

    def wait(self, client: httpx.Client, run_id: str, timeout: float = 300, poll: float = 0.02) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run: dict[str, Any] = client.get(f"{self.url}/api/v1/runs/{run_id}").json()
            if run["state"] in FINAL:
                if run["state"] != "succeeded":
                    raise SystemExit(f"run {run_id} ended {run['state']}")
                return run
            time.sleep(poll)
        raise SystemExit(f"run {run_id} did not end within {timeout} s")


@contextmanager
def store(kind: str, tmp: Path, pg_url: str) -> Iterator[str]:
    """A fresh store URL: a new SQLite file, or a new PostgreSQL database dropped afterwards."""
    if kind == "sqlite":
        path = tmp / f"s-{time.monotonic_ns()}.db"
        yield f"sqlite:///{path}"
        return
    from worldtree.testing.stores import fresh_pg_database

    with fresh_pg_database(pg_url) as url:
        yield url


# -- 1. submit -> first step started ------------------------------------------------------------
def start_latency(server: Server, runs: int) -> dict[str, Any]:
    delays: list[float] = []
    with httpx.Client(timeout=30) as client:
        server.wait(client, server.submit(client, ONE_STEP))  # warm-up, not counted
        for _ in range(runs):
            before = time.time()
            run = server.wait(client, server.submit(client, ONE_STEP), timeout=60, poll=0.05)
            delays.append((_ts(run["nodes"][0]["started_at"]) - before) * 1000)
    return {"runs": runs, "p50_ms": _pct(delays, 0.5), "p99_ms": _pct(delays, 0.99), "max_ms": _pct(delays, 1.0)}


# -- 2. throughput -------------------------------------------------------------------------------
def throughput(servers: list[Server], runs: int, timeout: float) -> dict[str, Any]:
    with httpx.Client(timeout=60) as client:
        def submit(n: int) -> tuple[Server, str]:
            server = servers[n % len(servers)]
            return server, server.submit(client, ONE_STEP)

        started = time.time()
        with ThreadPoolExecutor(SUBMITTERS) as pool:  # one client POSTing in a row would be the bottleneck
            ids = list(pool.map(submit, range(runs)))
        submitted = time.time() - started
        last = 0.0
        deadline = time.monotonic() + timeout
        for server, run_id in ids:
            run = server.wait(client, run_id, timeout=max(1.0, deadline - time.monotonic()), poll=0.2)
            last = max(last, _ts(run["finished_at"]))
    took = last - started
    return {"runs": runs, "replicas": len(servers), "submit_s": round(submitted, 2), "seconds": round(took, 2),
            "runs_per_s": round(runs / took, 1)}


def anchor(tmp: Path, runs: int, timeout: float) -> dict[str, Any]:
    """The same one-step runs by ``worldtree run`` in a shell loop (one process after another)."""
    work = tmp / "anchor"
    work.mkdir()
    (work / "one.yaml").write_text(ONE_STEP)
    wt = Path(sys.executable).parent / "worldtree"
    exe = str(wt) if wt.exists() else f"{sys.executable} -m worldtree.cli.main"
    script = f'for i in $(seq {runs}); do {exe} run one.yaml >/dev/null 2>&1 || exit 1; done'
    started = time.perf_counter()
    proc = subprocess.Popen(["sh", "-c", script], cwd=work, env=_env(), stdin=subprocess.DEVNULL,
                            start_new_session=True)
    PROCS.append(proc)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"anchor loop did not finish within {timeout} s") from None
    took = time.perf_counter() - started
    if code:
        raise SystemExit(f"anchor loop failed ({code})")
    return {"runs": runs, "seconds": round(took, 2), "runs_per_s": round(runs / took, 1)}


# -- 3. GET /runs/{id} at a paced rate ------------------------------------------------------------
async def _paced(url: str, rate: float, seconds: float, inflight: int) -> dict[str, Any]:
    total = int(rate * seconds)
    from_sched: list[float] = []
    from_send: list[float] = []
    errors = dropped = 0
    outstanding = 0
    limits = httpx.Limits(max_connections=inflight, max_keepalive_connections=inflight)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        loop = asyncio.get_running_loop()
        t0 = loop.time() + 0.1

        async def one(scheduled: float) -> None:
            nonlocal errors, outstanding
            sent = loop.time()
            try:
                r = await client.get(url)
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            done = loop.time()
            outstanding -= 1
            if not ok:
                errors += 1
                return
            from_sched.append((done - scheduled) * 1000)
            from_send.append((done - sent) * 1000)

        tasks = []
        for n in range(total):
            scheduled = t0 + n / rate
            delay = scheduled - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if outstanding >= inflight:
                dropped += 1
                continue
            outstanding += 1
            tasks.append(asyncio.create_task(one(scheduled)))
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
        span = loop.time() - t0
    return {"requests": total, "rate": rate, "achieved_per_s": round(len(from_sched) / span, 1), "errors": errors,
            "dropped": dropped, "p50_ms": _pct(from_sched, 0.5), "p99_ms": _pct(from_sched, 0.99),
            "send_p50_ms": _pct(from_send, 0.5), "send_p99_ms": _pct(from_send, 0.99)}


def read_latency(server: Server, rate: float, seconds: float, inflight: int) -> dict[str, Any]:
    with httpx.Client(timeout=30) as client:
        run_id = server.submit(client, ONE_STEP)
        server.wait(client, run_id)
    return asyncio.run(_paced(f"{server.url}/api/v1/runs/{run_id}", rate, seconds, inflight))


# -- 4. SSE followers ------------------------------------------------------------------------------
TS_KEY = b'"ts": "'


async def _follow(url: str, deadline: float, lags: list[float], counts: list[int], me: int) -> bool:
    """Read one stream as raw bytes; count events (into ``counts[me]``, kept when cut off); sample
    the last event's lag per chunk."""
    ended = False
    tail = b""
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=60)) as client, \
            client.stream("GET", url) as response:
        async for chunk in response.aiter_raw():
            now = time.time()
            data = tail + chunk
            cut = data.rfind(b"\n")
            whole, tail = data[:cut + 1], data[cut + 1:]
            counts[me] += whole.count(b"\ndata: ") + whole.startswith(b"data: ")
            at = whole.rfind(TS_KEY)
            if at >= 0:
                end = whole.find(b'"', at + len(TS_KEY))
                if end > 0:
                    lags.append((now - _ts(whole[at + len(TS_KEY):end].decode())) * 1000)
            if b"event: end" in whole:
                ended = True
                break
            if time.monotonic() > deadline:
                break
    return ended


async def _followed_run(server: Server, document: str, followers: int, grace: float,
                        timeout: float) -> dict[str, Any]:
    with httpx.Client(timeout=60) as client:
        run_id = server.submit(client, document)
    lags: list[float] = []
    counts = [0] * followers
    deadline = time.monotonic() + timeout
    tasks = [asyncio.create_task(_follow(f"{server.url}/api/v1/runs/{run_id}/logs/stream", deadline, lags,
                                         counts, n)) for n in range(followers)]
    with httpx.Client(timeout=60) as client:
        run = await asyncio.to_thread(server.wait, client, run_id, timeout, 0.2)
    cut = time.monotonic() + grace
    done, pending = (await asyncio.wait(tasks, timeout=max(0.0, min(cut, deadline) - time.monotonic()))
                     if tasks else (set(), set()))
    for task in pending:
        task.cancel()
    ended = sum(1 for t in done if not t.cancelled() and t.exception() is None and t.result())
    node = run["nodes"][0]
    out: dict[str, Any] = {"run_s": round(_ts(node["finished_at"]) - _ts(node["started_at"]), 2)}
    if followers:
        out.update({"followers": followers, "ended": ended, "cut_off": len(pending),
                    "events_min": min(counts), "events_max": max(counts),
                    "lag_p50_ms": _pct(lags, 0.5), "lag_p99_ms": _pct(lags, 0.99), "lag_max_ms": _pct(lags, 1.0)})
    return out


def followers(server: Server, lines: int, count: int, grace: float, timeout: float) -> dict[str, Any]:
    document = f"name: chatty\njobs:\n  a:\n    steps: ['seq 1 {lines}']\n"
    alone = asyncio.run(_followed_run(server, document, 0, grace, timeout))
    followed = asyncio.run(_followed_run(server, document, count, grace, timeout))
    return {"lines": lines, "run_alone_s": alone["run_s"], "run_followed_s": followed["run_s"],
            "slowdown": round(followed["run_s"] / alone["run_s"], 2),
            **{k: v for k, v in followed.items() if k != "run_s"}}


# -- driver ----------------------------------------------------------------------------------------
def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def bench_store(kind: str, tmp: Path, args: argparse.Namespace, out: dict[str, Any]) -> None:
    result: dict[str, Any] = out.setdefault(kind, {})

    def section(name: str, make: Any) -> None:
        if name not in args.only:
            return
        started = time.monotonic()
        result[name] = make()
        result[name]["bench_s"] = round(time.monotonic() - started, 1)
        result[name]["load"] = load()
        print(f"# {kind} {name}: {json.dumps(result[name])}", file=sys.stderr, flush=True)

    def with_server(executors: int, body: Any) -> Any:
        def make() -> Any:
            with store(kind, tmp, args.pg_url) as url:
                server = Server(url, tmp / f"data-{time.monotonic_ns()}", executors)
                try:
                    return body(server)
                finally:
                    server.stop()
        return make

    section("latency", with_server(1, lambda s: start_latency(s, args.latency_runs)))
    section("throughput", with_server(2, lambda s: throughput([s], args.runs, args.timeout)))
    section("read", with_server(2, lambda s: read_latency(s, args.rate, args.seconds, args.inflight)))
    section("followers", with_server(2, lambda s: followers(s, args.lines, args.followers, args.follow_grace,
                                                            args.timeout)))
    if kind == "postgres" and "replicas" in args.only:
        def replicas() -> dict[str, Any]:
            one = with_server(2, lambda s: throughput([s], args.runs, args.timeout))()
            with store(kind, tmp, args.pg_url) as url:
                pair = [Server(url, tmp / f"data-{time.monotonic_ns()}", 2) for _ in range(2)]
                try:
                    two = throughput(pair, args.runs, args.timeout)
                finally:
                    for server in pair:
                        server.stop()
            return {"one_runs_per_s": one["runs_per_s"], "two_runs_per_s": two["runs_per_s"],
                    "ratio_two_over_one": round(two["runs_per_s"] / one["runs_per_s"], 2), "runs": args.runs}
        section("replicas", replicas)


def report(out: dict[str, Any]) -> None:
    print(f"worldtree server bench  load before: {out['load_before']}  after: {out['load_after']}  "
          f"({os.cpu_count()} cores)")
    if "anchor" in out:
        a = out["anchor"]
        print(f"anchor: {a['runs']} x `worldtree run` in a shell loop: {a['seconds']} s, {a['runs_per_s']} runs/s")
    for kind in ("sqlite", "postgres"):
        r = out.get(kind)
        if not r:
            continue
        print(f"\n[{kind}]")
        if "latency" in r:
            x = r["latency"]
            print(f"1 submit->first step started, {x['runs']} runs, idle executor: p50 {x['p50_ms']} ms  "
                  f"p99 {x['p99_ms']} ms  max {x['max_ms']} ms   (goal p99 < 100 ms)")
        if "throughput" in r:
            x = r["throughput"]
            ratio = f"  server/anchor {x['runs_per_s'] / out['anchor']['runs_per_s']:.2f}x" if "anchor" in out else ""
            print(f"2 {x['runs']} one-step runs, 2 executors: {x['seconds']} s, {x['runs_per_s']} runs/s{ratio}"
                  "   (goal: server faster)")
        if "read" in r:
            x = r["read"]
            print(f"3 GET /runs/{{id}} at {x['rate']:.0f}/s ({x['requests']} req, achieved {x['achieved_per_s']}/s, "
                  f"errors {x['errors']}, dropped {x['dropped']}): p50 {x['p50_ms']} ms  p99 {x['p99_ms']} ms "
                  f"(from send: p50 {x['send_p50_ms']}  p99 {x['send_p99_ms']})   (goal p99 < 20 ms)")
        if "followers" in r:
            x = r["followers"]
            print(f"4 {x['lines']} lines, {x['followers']} SSE followers: run {x['run_followed_s']} s vs "
                  f"{x['run_alone_s']} s alone = {x['slowdown']}x (goal <= 1.5x); lag p50 {x['lag_p50_ms']} ms "
                  f"p99 {x['lag_p99_ms']} ms max {x['lag_max_ms']} ms; followers ended {x['ended']}, "
                  f"cut off {x['cut_off']} (events per follower {x['events_min']}..{x['events_max']})")
        if "replicas" in r:
            x = r["replicas"]
            print(f"5 {x['runs']} runs, two replicas on one PostgreSQL: {x['two_runs_per_s']} runs/s vs one "
                  f"{x['one_runs_per_s']} runs/s = {x['ratio_two_over_one']}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="a < 60 s smoke: small sizes for everything")
    ap.add_argument("--pg", action="store_true", help="also PostgreSQL (and section 5, replicas)")
    ap.add_argument("--no-sqlite", action="store_true", help="skip SQLite")
    ap.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--only", default="latency,throughput,read,followers,replicas",
                    help="comma-separated sections")
    ap.add_argument("--latency-runs", type=int, default=200)
    ap.add_argument("--runs", type=int, default=60, help="runs for throughput, anchor and replicas")
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--inflight", type=int, default=50)
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--followers", type=int, default=50)
    ap.add_argument("--follow-grace", type=float, default=10.0)
    ap.add_argument("--timeout", type=float, default=120.0, help="bound of any one wait")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.latency_runs, args.runs, args.seconds = 20, 20, 3.0
        args.lines, args.followers, args.follow_grace = 20_000, 5, 10.0
    args.only = set(args.only.split(","))

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    out: dict[str, Any] = {"load_before": load()}
    try:
        with tempfile.TemporaryDirectory(prefix="wt-bench-server-") as name:
            tmp = Path(name)
            if "throughput" in args.only:
                out["anchor"] = anchor(tmp, args.runs, args.timeout * 5)
                print(f"# anchor: {json.dumps(out['anchor'])}", file=sys.stderr, flush=True)
            if not args.no_sqlite:
                bench_store("sqlite", tmp, args, out)
            if args.pg:
                bench_store("postgres", tmp, args, out)
            kill_all()
    finally:
        kill_all()
    out["load_after"] = load()
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        report(out)


if __name__ == "__main__":
    main()
