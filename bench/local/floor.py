"""Python's floor: a bare asyncio loop running a workload's DAG of `true` processes.

No parsing beyond JSON, no store, no logs kept: the least any asyncio runner in this interpreter
can do for the same work. Each node is ``true`` started with ``create_subprocess_exec`` in its own
process group (as worldtree's host backend does), its stdout/stderr read through a pipe to EOF,
and at most ``--concurrency`` run at once; a node starts as soon as its dependencies are done
(ready-set over explicit edges, not levels).

Usage: ``python bench/local/floor.py out/w1.json --concurrency 2 [--watcher pidfd|threaded]
[--no-capture] [--shell]``. Exits 1 if any process exits non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path


async def run_dag(graph: list[tuple[str, list[str]]], concurrency: int, capture: bool,
                  argv: tuple[str, ...] = ("true",)) -> int:
    dependents: dict[str, list[str]] = {name: [] for name, _ in graph}
    waiting: dict[str, int] = {}
    for name, needs in graph:
        waiting[name] = len(needs)
        for need in needs:
            dependents[need].append(name)
    ready: asyncio.Queue[str | None] = asyncio.Queue()
    for name, count in waiting.items():
        if count == 0:
            ready.put_nowait(name)
    remaining = len(graph)
    failures = 0
    out = asyncio.subprocess.PIPE if capture else asyncio.subprocess.DEVNULL
    err = asyncio.subprocess.STDOUT if capture else asyncio.subprocess.DEVNULL

    async def worker() -> None:
        nonlocal remaining, failures
        while (name := await ready.get()) is not None:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True
            )
            if capture:
                assert proc.stdout is not None
                while await proc.stdout.readline():
                    pass
            if await proc.wait() != 0:
                failures += 1
            remaining -= 1
            for child in dependents[name]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    ready.put_nowait(child)
            if remaining == 0:
                for _ in range(concurrency):
                    ready.put_nowait(None)

    if remaining:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return 1 if failures else 0


def install_watcher(kind: str) -> str:
    """Install the requested child watcher (Python < 3.12 only); return the one in use."""
    if sys.version_info >= (3, 12):
        return "default (3.12+: pidfd where available)"
    if kind == "pidfd" and hasattr(asyncio, "PidfdChildWatcher"):
        asyncio.set_child_watcher(asyncio.PidfdChildWatcher())
        return "pidfd"
    return "threaded (3.11 default)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("graph", type=Path, help="a workload's .json written by gen.py")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--watcher", choices=["pidfd", "threaded"], default="pidfd")
    parser.add_argument("--no-capture", action="store_true", help="send output to /dev/null, no pipes")
    parser.add_argument("--shell", action="store_true",
                        help="spawn `sh -e -c true` (as worldtree's host backend does), not `true`")
    args = parser.parse_args(argv)
    install_watcher(args.watcher)
    graph = [(name, needs) for name, needs in json.loads(args.graph.read_text())]
    argv = ("sh", "-e", "-c", "true") if args.shell else ("true",)
    return asyncio.run(run_dag(graph, args.concurrency, capture=not args.no_capture, argv=argv))


if __name__ == "__main__":
    sys.exit(main())
