"""Time worldtree against GNU make, doit and a bare asyncio loop on the same DAGs of `true`.

Usage: ``python bench/local/run.py [--concurrency N] [--only W1,W3,M] [--repeat 3] [--json]``.

Each tool runs as a fresh process in a fresh temporary directory (so worldtree's ``.worldtree/``
SQLite store and doit's ``.doit.db`` start empty), stdout and stderr to files, never a TTY. Per
workload and tool: one warm-up run, then ``--repeat`` timed runs; the table shows the best (the
least-disturbed) wall time, the JSON also every sample and the median. Peak RSS comes from
GNU time (``/usr/bin/time -f %M``) around the tool's process. A run that exceeds ``--timeout``
has its process group killed and counts as failed; a tool that fails its warm-up is not timed
further.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gen  # noqa: E402  (a sibling script, not a package)

TIMED = ["w0", "w1", "w2", "w3"]
DOIT_ON = {"w1", "w2", "w3"}
# workload -> (max worldtree/make, must beat doit); W0 is judged on wall time, M on memory.
RATIO_TARGETS = {"w1": 2.5, "w2": 3.0, "w3": 2.5}
W0_MAX_S = 0.35
M_MAX_MB = 150.0


@dataclass
class Sample:
    wall_s: float
    rss_mb: float
    rc: int
    error: str = ""


@dataclass
class Measure:
    tool: str
    samples: list[Sample] = field(default_factory=list)
    note: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.samples) and all(s.rc == 0 for s in self.samples)

    @property
    def best(self) -> float | None:
        return min(s.wall_s for s in self.samples) if self.ok else None

    @property
    def median(self) -> float | None:
        return statistics.median(s.wall_s for s in self.samples) if self.ok else None

    @property
    def peak_rss_mb(self) -> float | None:
        return max(s.rss_mb for s in self.samples) if self.samples else None

    @property
    def error(self) -> str:
        return next((s.error for s in self.samples if s.rc != 0), "")


def tool_path(name: str) -> str:
    """The real executable beside this interpreter, not a pyenv shim (which adds ~0.1 s a call)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found; install it (pip install -e '.[bench]')")
    return found


GNU_TIME = "/usr/bin/time"


def run_once(argv: list[str], cwd: Path, timeout: float) -> Sample:
    """Run ``argv`` in ``cwd``; its wall time and peak RSS.

    The RSS comes from GNU time when it is there: ``os.wait4`` on a child of this (~25 MB)
    Python process would report at least this process's size, which the kernel carries over
    to the child as it forks and execs.
    """
    rss_file = cwd / "rss.txt"
    if Path(GNU_TIME).exists():
        argv = [GNU_TIME, "-f", "%M", "-o", str(rss_file), *argv]
    out = (cwd / "stdout.txt").open("wb")
    err = (cwd / "stderr.txt").open("wb")
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                            start_new_session=True)
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
        out.close()
        err.close()
    wall = time.perf_counter() - start
    rc = os.waitstatus_to_exitcode(status)
    proc.returncode = rc  # reaped by wait4 above; keep Popen from waiting again
    rss_mb = usage.ru_maxrss / 1024
    try:  # GNU time writes "Command exited with non-zero status N" first when it is so
        rss_mb = int(rss_file.read_text().split()[-1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    error = ""
    if timed_out.is_set():
        error = f"timed out after {timeout:.0f} s"
        rc = rc or -9
    elif rc != 0:
        tail = (cwd / "stderr.txt").read_text(errors="replace").strip().splitlines()[-15:]
        tail = tail or (cwd / "stdout.txt").read_text(errors="replace").strip().splitlines()[-15:]
        error = f"exit {rc}: " + "\n".join(tail)
    return Sample(wall, rss_mb, rc, error)


def measure(tool: str, argv_for: object, repeat: int, timeout: float, note: str = "",
            one_dir: bool = False) -> Measure:
    """One warm-up, then ``repeat`` timed runs, each in a new empty temporary directory
    (``one_dir``: all in the same one, so the timed runs find the store the warm-up created)."""
    m = Measure(tool, note=note)
    with tempfile.TemporaryDirectory(prefix=f"wtbench-{tool}-") as shared:
        for i in range(repeat + 1):
            with tempfile.TemporaryDirectory(prefix=f"wtbench-{tool}-") as fresh:
                tmp = Path(shared if one_dir else fresh)
                sample = run_once(argv_for(tmp), tmp, timeout)  # type: ignore[operator]
            if i == 0:
                if sample.rc != 0:
                    m.samples = [sample]
                    return m
                continue
            m.samples.append(sample)
    return m


def commands(key: str, out: Path, n: int) -> dict[str, object]:
    """tool -> function(tmpdir) -> argv, for one workload."""
    worldtree, doit = tool_path("worldtree"), tool_path("doit")
    yaml, mk, dodo, graph = (out / f"{key}.yaml", out / f"{key}.mk", out / f"dodo_{key}.py",
                             out / f"{key}.json")
    cmds: dict[str, object] = {
        "worldtree": lambda tmp: [worldtree, "run", str(yaml), "--concurrency", str(n)],
        "worldtree-warm": lambda tmp: [worldtree, "run", str(yaml), "--concurrency", str(n)],
        "make": lambda tmp: ["make", f"-j{n}", "-f", str(mk)],
        "floor": lambda tmp: [sys.executable, str(HERE / "floor.py"), str(graph), "--concurrency", str(n)],
    }
    for mode in ("process", "thread"):
        cmds[f"doit-{mode}"] = (lambda tmp, mode=mode: [
            doit, "-f", str(dodo), "-d", str(tmp), "--db-file", str(tmp / ".doit.db"),
            "-n", str(n), "-P", mode])
    return cmds


def bench_workload(key: str, out: Path, args: argparse.Namespace) -> dict[str, Measure]:
    cmds = commands(key, out, args.concurrency)
    if key == "m":  # memory: worldtree (and the floor for reference), one timed run each
        return {t: measure(t, cmds[t], 1, args.timeout) for t in ("worldtree", "floor")}
    tools = ["worldtree", "make", "floor"]
    if key in DOIT_ON:
        tools += [f"doit-{m}" for m in args.doit_modes]
    if args.warm_store:  # the store already there, as on every run of a user's but the first
        tools.insert(1, "worldtree-warm")
    results: dict[str, Measure] = {}
    for tool in tools:
        results[tool] = measure(tool, cmds[tool], args.repeat, args.timeout,
                                one_dir=tool == "worldtree-warm")
        print(f"  {key} {tool:13s} {_fmt(results[tool].best)} s", file=sys.stderr, flush=True)
    doits = [results[t] for t in results if t.startswith("doit-") and results[t].ok]
    if doits:  # doit's column is its fastest parallel mode on this workload
        fastest = min(doits, key=lambda m: m.best or 0.0)
        results["doit"] = Measure(fastest.tool, fastest.samples, note=fastest.tool.removeprefix("doit-"))
    return results


def verdict(key: str, r: dict[str, Measure], tool: str = "worldtree") -> tuple[str, bool | None]:
    wt = r[tool]
    if not wt.ok:
        return ("worldtree failed", False)
    if key == "m":
        rss = wt.peak_rss_mb or 0.0
        return (f"RSS < {M_MAX_MB:.0f} MB", rss < M_MAX_MB)
    if key == "w0":
        return (f"<= {W0_MAX_S} s", (wt.best or 0.0) <= W0_MAX_S)
    make, doit = r.get("make"), r.get("doit")
    limit = RATIO_TARGETS[key]
    target = f"<= {limit}x make, < doit"
    if not (make and make.ok and doit and doit.ok):
        return (target, None)
    assert wt.best is not None and make.best is not None and doit.best is not None
    return (target, wt.best <= limit * make.best and wt.best < doit.best)


def _fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _ratio(a: Measure | None, b: Measure | None) -> str:
    if a is None or b is None or a.best is None or b.best is None or b.best == 0:
        return "-"
    return f"{a.best / b.best:.2f}x"


def table(all_results: dict[str, dict[str, Measure]], facts: dict[str, dict[str, object]]) -> str:
    head = ["workload", "worldtree s", "make s", "doit s", "floor s", "wt/make", "wt/doit",
            "floor/make", "wt RSS MB", "target", "result"]
    rows = [head]
    for key, r in all_results.items():
        make, doit, floor = (r.get(t) for t in ("make", "doit", "floor"))
        for tool in ("worldtree", "worldtree-warm"):
            wt = r.get(tool)
            if wt is None:
                continue
            target, ok = verdict(key, r, tool)
            ratios = [_ratio(wt, make), _ratio(wt, doit), _ratio(floor, make)]
            if key == "w0":  # ratios to a 3 ms make run say nothing
                ratios = ["-", "-", "-"]
            first = tool == "worldtree"
            rows.append([
                f"{key.upper()} ({facts[key]['nodes']} n)" if first else "  store exists",
                _fmt(wt.best), _fmt(make.best if make and first else None),
                "-" if doit is None or not first else f"{_fmt(doit.best)} ({doit.note})",
                _fmt(floor.best if floor and first else None), *ratios,
                _fmt(wt.peak_rss_mb, 0), target, "n/a" if ok is None else ("PASS" if ok else "FAIL"),
            ])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def compile_bytecode() -> None:
    """Start-up is measured as an installed package starts: from bytecode caches. Where the
    environment says PYTHONDONTWRITEBYTECODE (CI images do), every run would otherwise compile
    worldtree's modules from source, and W0 would measure the compiler, not worldtree."""
    import importlib.util

    spec = importlib.util.find_spec("worldtree")
    if spec is None or not spec.submodule_search_locations:
        return
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "compileall", "-q", *spec.submodule_search_locations],
                   env=env, check=False, stdout=subprocess.DEVNULL)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # the timed runs read the caches


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=2,
                        help="worldtree --concurrency, make -j, doit -n, the floor's limit")
    parser.add_argument("--only", default="", help="comma-separated workloads, e.g. W1,W3,M (default: all)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs after the warm-up (best is shown)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per run before it is killed")
    parser.add_argument("--doit-modes", default="process,thread",
                        help="doit -P modes to try; the doit column shows the fastest")
    parser.add_argument("--out", type=Path, default=gen.DEFAULT_OUT, help="where gen.py writes the workloads")
    parser.add_argument("--no-warm-store", dest="warm_store", action="store_false",
                        help="skip the second worldtree row, timed with .worldtree/ already migrated")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    args = parser.parse_args(argv)
    args.doit_modes = [m for m in args.doit_modes.split(",") if m]
    only = {w.strip().lower() for w in args.only.split(",") if w.strip()} or None
    unknown = (only or set()) - set(gen.WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; choose from {', '.join(gen.WORKLOADS).upper()}")

    compile_bytecode()
    facts = gen.write_all(args.out, only)
    for key, f in facts.items():
        print(f"{key}: {f['nodes']} nodes, {f['edges']} edges, {f['yaml']} ({f['yaml_bytes'] / 1000:.0f} KB)",
              file=sys.stderr)
    started = time.perf_counter()
    results: dict[str, dict[str, Measure]] = {}
    for key in facts:
        before = loadavg()
        results[key] = bench_workload(key, args.out, args)
        facts[key]["loadavg_before_after"] = [before, loadavg()]
    elapsed = time.perf_counter() - started

    if args.json:
        doc = {
            "concurrency": args.concurrency, "repeat": args.repeat, "python": sys.version.split()[0],
            "statistic": "best of repeat after one warm-up", "elapsed_s": round(elapsed, 1),
            "workloads": {
                key: {
                    **facts[key],
                    "target": verdict(key, r)[0], "pass": verdict(key, r)[1],
                    "pass_store_exists": verdict(key, r, "worldtree-warm")[1] if "worldtree-warm" in r else None,
                    "tools": {t: {**asdict(m), "best_s": m.best, "median_s": m.median,
                                  "peak_rss_mb": m.peak_rss_mb} for t, m in r.items()},
                }
                for key, r in results.items()
            },
        }
        print(json.dumps(doc, indent=2))
    else:
        print(table(results, facts))
        print(f"\nconcurrency {args.concurrency}; best of {args.repeat} after one warm-up; "
              f"Python {sys.version.split()[0]}; {elapsed:.0f} s in all")
        print("load average (1/5/15 min) before -> after each workload: " + "; ".join(
            f"{k.upper()} {f['loadavg_before_after'][0]} -> {f['loadavg_before_after'][1]}"  # type: ignore[index]
            for k, f in facts.items()))
        for key, r in results.items():
            for tool, m in r.items():
                if not m.ok:
                    print(f"\n{key.upper()} {tool} failed: {m.error}")
    failed = any(verdict(k, r)[1] is False for k, r in results.items())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
