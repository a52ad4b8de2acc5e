"""SSH fan-out benchmark: N loopback sshd "hosts" x M steps of `true`, concurrency C.

Contenders, all in the same run against the same servers, test user and key exchange:

* floor      a bare asyncssh loop: one connection per host, ``conn.run("true")`` per step
* backend    worldtree's SshBackend driven directly (pool + remote wrapper + kill support)
* engine     worldtree's engine in-process on the fanned-out graph, no store, no console
* worldtree  ``worldtree run`` of a pipeline whose job has ``hosts: [farm]`` (CLI, engine, store;
             includes interpreter start-up, printed separately)
* ansible    ansible-playbook, pipelining on, forks 20 (``pip install ansible-core``)
* pyinfra    pyinfra, ``--parallel C`` (``pip install pyinfra``)

Every contender's time includes opening its connections. The floor prefers the same cipher
as worldtree (AES-GCM), so the ratio measures worldtree, not a cipher choice. Each host's steps run in order;
hosts run in parallel up to the concurrency. Needs root (it starts sshd and creates the test
user ``wtssh`` with /bin/sh). Run: ``python bench/ssh/bench_ssh.py [--hosts 20 --steps 25 -j 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "ssh"))

import asyncssh  # noqa: E402
from sshd_farm import Farm, inventory_yaml, start_farm  # noqa: E402

from worldtree.backends.base import RunContext, StepRequest  # noqa: E402
from worldtree.backends.ssh.backend import SshBackend  # noqa: E402
from worldtree.connectors.ssh.pool import CIPHERS  # noqa: E402
from worldtree.model.graph import ExecutionGraph, Node, Target  # noqa: E402


async def _chains(hosts: int, steps: int, concurrency: int, step) -> None:  # type: ignore[no-untyped-def]
    gate = asyncio.Semaphore(concurrency)

    async def chain(h: int) -> None:
        for s in range(steps):
            async with gate:
                await step(h, s)

    await asyncio.gather(*(chain(h) for h in range(hosts)))


async def floor(farm: Farm, steps: int, concurrency: int) -> float:
    started = time.perf_counter()
    conns = await asyncio.gather(*(asyncssh.connect(
        "127.0.0.1", port=s.port, username=farm.user, client_keys=[str(farm.client_key)],
        known_hosts=str(farm.known_hosts), agent_path=None, encryption_algs=CIPHERS) for s in farm.servers))

    async def step(h: int, _s: int) -> None:
        result = await conns[h].run("true", check=True)
        assert result.exit_status == 0

    await _chains(len(conns), steps, concurrency, step)
    elapsed = time.perf_counter() - started
    for c in conns:
        c.close()
    return elapsed


async def backend(farm: Farm, steps: int, concurrency: int) -> float:
    nodes = [Node(id=f"j@{s.name}/s", path="p", name="s", job="j", command="true",
                  target=Target(kind="ssh", host=s.name)) for s in farm.servers]
    inv = farm.root / "inventory.yaml"
    ctx = RunContext(run_id="bench", attempt=1, workdir="/nonexistent", graph=ExecutionGraph(name="b", nodes=nodes),
                     config={"inventory": str(inv)})
    be = SshBackend(ctx)
    started = time.perf_counter()

    async def step(h: int, _s: int) -> None:
        code = await be.execute(StepRequest(node=nodes[h], command="true", env={}, workdir="/nonexistent"),
                                lambda _stream, _line: None)
        assert code == 0

    try:
        await _chains(len(nodes), steps, concurrency, step)
        return time.perf_counter() - started
    finally:
        await be.close()


def _pipeline(steps: int) -> str:
    lines = ["name: bench", "inventory: inventory.yaml", "jobs:", "  fleet:", "    hosts: [farm]", "    steps:"]
    lines += [f"      - {{name: s{i}, command: 'true'}}" for i in range(steps)]
    return "\n".join(lines) + "\n"


class _Quiet:
    def on_event(self, event: object) -> None:
        pass

    def on_log(self, line: object) -> None:
        pass


async def engine(farm: Farm, steps: int, concurrency: int, work: Path) -> float:
    from worldtree.compile.compiler import compile_pipeline
    from worldtree.compile.fanout import expand_hosts
    from worldtree.compile.loader import load_pipeline_text
    from worldtree.engine.local import local_driver
    from worldtree.ops.inventory import load_inventory

    graph = compile_pipeline(load_pipeline_text(_pipeline(steps), "bench.yaml").spec)
    graph = expand_hosts(graph, load_inventory(work / "inventory.yaml"))
    ctx = RunContext(run_id="bench", attempt=1, workdir=str(work), graph=graph)
    started = time.perf_counter()
    await local_driver(ctx, _Quiet(), concurrency=concurrency).run()  # type: ignore[arg-type]
    return time.perf_counter() - started


def _timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                            check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                           f"{result.stderr[-3000:]}")
    return elapsed


def worldtree_cli(farm: Farm, steps: int, concurrency: int, work: Path) -> tuple[float, float]:
    (work / "pipeline.yaml").write_text(_pipeline(steps))
    env = {"WORLDTREE_STORE": f"sqlite:///{work / 'store.db'}"}
    cli = [sys.executable, "-m", "worldtree.cli.main"]
    startup = min(_timed([*cli, "--help"], work, env) for _ in range(3))
    return _timed([*cli, "run", "pipeline.yaml", "-j", str(concurrency)], work, env), startup


def ansible(farm: Farm, steps: int, work: Path) -> float:
    d = work / "ansible"
    d.mkdir()
    hosts = "\n".join(f"{s.name} ansible_host=127.0.0.1 ansible_port={s.port}" for s in farm.servers)
    (d / "hosts.ini").write_text(
        f"[farm]\n{hosts}\n\n[farm:vars]\nansible_user={farm.user}\n"
        f"ansible_ssh_private_key_file={farm.client_key}\nansible_python_interpreter=/usr/bin/python3\n"
        f"ansible_ssh_common_args='-o UserKnownHostsFile={farm.known_hosts} -o StrictHostKeyChecking=yes'\n")
    (d / "ansible.cfg").write_text(
        "[defaults]\nforks = 20\nhost_key_checking = True\ngathering = explicit\nretry_files_enabled = False\n"
        f"local_tmp = {d}/tmp\n\n[ssh_connection]\npipelining = True\ncontrol_path_dir = {d}/cp\n")
    tasks = "\n".join(f"    - name: s{i}\n      ansible.builtin.command: 'true'" for i in range(steps))
    (d / "play.yaml").write_text(f"- hosts: farm\n  gather_facts: false\n  tasks:\n{tasks}\n")
    try:
        return _timed(["ansible-playbook", "-i", "hosts.ini", "play.yaml"], d,
                      {"ANSIBLE_CONFIG": str(d / "ansible.cfg")})
    finally:  # ControlPersist masters would outlive the benchmark
        for sock in (d / "cp").glob("*"):
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"], capture_output=True,
                           check=False)


def pyinfra(farm: Farm, steps: int, concurrency: int, work: Path) -> float:
    d = work / "pyinfra"
    d.mkdir()
    hosts = ",\n".join(
        f"    ({s.name!r}, {{'ssh_hostname': '127.0.0.1', 'ssh_port': {s.port}, 'ssh_user': {farm.user!r}, "
        f"'ssh_key': {str(farm.client_key)!r}, 'ssh_known_hosts_file': {str(farm.known_hosts)!r}}})"
        for s in farm.servers)
    (d / "inventory.py").write_text(f"farm = [\n{hosts},\n]\n")
    ops = "\n".join(f"server.shell(name='s{i}', commands=['true'])" for i in range(steps))
    (d / "deploy.py").write_text(f"from pyinfra.operations import server\n\n{ops}\n")
    return _timed(["pyinfra", "-y", "--parallel", str(concurrency), "inventory.py", "deploy.py"], d)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("-j", "--concurrency", type=int, default=10)
    parser.add_argument("--skip", action="append", default=[], help="engine, worldtree, pyinfra or ansible")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    farm = start_farm(args.hosts, password_servers=0)
    work = Path(tempfile.mkdtemp(prefix="wt-bench-ssh-"))
    (work / "inventory.yaml").write_text(inventory_yaml(farm))
    (farm.root / "inventory.yaml").write_text(inventory_yaml(farm))
    results: dict[str, float] = {}
    notes: dict[str, str] = {}
    try:
        results["floor"] = asyncio.run(floor(farm, args.steps, args.concurrency))
        results["backend"] = asyncio.run(backend(farm, args.steps, args.concurrency))
        if "engine" not in args.skip:
            try:
                results["engine"] = asyncio.run(engine(farm, args.steps, args.concurrency, work))
            except (ImportError, TypeError) as exc:  # the engine's API is young
                notes["engine"] = f"unavailable: {exc}"
        if "worldtree" not in args.skip:
            results["worldtree"], startup = worldtree_cli(farm, args.steps, args.concurrency, work)
            notes["worldtree"] = f"CLI; {startup:.2f}s of it is `worldtree --help` start-up"
        for name, fn in (("pyinfra", lambda: pyinfra(farm, args.steps, args.concurrency, work)),
                         ("ansible", lambda: ansible(farm, args.steps, work))):
            if name in args.skip:
                continue
            if shutil.which(name if name == "pyinfra" else "ansible-playbook") is None:
                notes[name] = "not installed (pip install " + ("pyinfra" if name == "pyinfra" else "ansible-core") + ")"
                continue
            try:
                results[name] = fn()
            except RuntimeError as exc:
                notes[name] = f"failed: {str(exc).splitlines()[0]}"
                print(exc, file=sys.stderr)
    finally:
        farm.stop()
        shutil.rmtree(work, ignore_errors=True)
    base = results["floor"]
    total = args.hosts * args.steps
    if args.json:
        print(json.dumps({"hosts": args.hosts, "steps": args.steps, "concurrency": args.concurrency,
                          "seconds": results, "notes": notes}))
        return 0
    print(f"{args.hosts} hosts x {args.steps} steps of `true` = {total} steps, concurrency {args.concurrency}")
    print(f"{'contender':<10} {'seconds':>8} {'ms/step':>8} {'x floor':>8}  notes")
    for name, secs in results.items():
        print(f"{name:<10} {secs:8.2f} {1000 * secs / total:8.2f} {secs / base:8.2f}  {notes.get(name, '')}")
    for name, note in notes.items():
        if name not in results:
            print(f"{name:<10} {'-':>8} {'-':>8} {'-':>8}  {note}")
    wt = results.get("worldtree", results["backend"])
    if "ansible" in results:
        print(f"ansible / worldtree = {results['ansible'] / wt:.1f}x")
    if "pyinfra" in results:
        print(f"pyinfra / worldtree = {results['pyinfra'] / wt:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
