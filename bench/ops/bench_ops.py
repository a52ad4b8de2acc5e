"""Operations benchmark: N loopback sshd "hosts" x 30 idempotent operations, first and second apply.

Per host: 5 directories, 8 files (content), 6 line edits, 7 templates (variables and facts),
4 commands guarded by ``creates``. Contenders, in the same run, on the same servers, user and
key, each in its own directory tree per host:

* worldtree  ``worldtree apply playbook.yaml -i inventory.yaml`` (CLI: includes start-up, facts)
* pyinfra    ``pyinfra -y --parallel N inventory.py deploy.py`` (files.directory/put/line/template,
             server.shell ``test -e X || ...``: pyinfra has no ``creates``, so its commands always run)
* ansible    ``ansible-playbook`` with pipelining on, forks N, ``gather_subset: min`` (file, copy,
             lineinfile, template, command creates); only when ``--ansible`` names an
             ``ansible-playbook`` or it is on PATH

The second apply must change nothing; the script checks the trees after the first one. Needs
root (it starts sshd and creates the test user). Run:
``python bench/ops/bench_ops.py [--hosts 20] [--ansible /path/to/ansible-playbook] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "ssh"))

from sshd_farm import Farm, start_farm  # noqa: E402

DIRS, FILES, LINES, TEMPLATES, COMMANDS = 5, 8, 6, 7, 4
TEMPLATE = "# generated\nname={{ name }}\nport={{ port }}\nindex={{ index }}\n"


def _timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=1800)
    took = time.perf_counter() - start
    if proc.returncode not in (0, 3):
        raise RuntimeError(f"{argv[0]} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return took


def _roots(farm: Farm, base: Path) -> None:
    """A tree per host owned by the farm's user, with the files the line edits work on."""
    uid = pwd.getpwnam(farm.user).pw_uid
    base.mkdir(parents=True)
    os.chown(base, uid, -1)
    for s in farm.servers:
        root = base / s.name
        root.mkdir()
        for i in range(LINES):
            (root / f"l{i}.conf").write_text(f"# l{i}\nkey{i}=off\n")
            os.chown(root / f"l{i}.conf", uid, -1)
        os.chown(root, uid, -1)


def _count(base: Path, farm: Farm) -> int:
    """Paths the 30 operations leave per host, summed (checks each contender did the work)."""
    total = 0
    for s in farm.servers:
        root = base / s.name
        total += sum(1 for i in range(DIRS) if (root / f"d{i}").is_dir())
        total += sum(1 for i in range(FILES) if (root / f"d{i % DIRS}" / f"f{i}.txt").read_text() == f"file {i}\n")
        total += sum(1 for i in range(LINES) if f"key{i}=on\n" in (root / f"l{i}.conf").read_text())
        total += sum(1 for i in range(TEMPLATES) if (root / f"t{i}.conf").is_file())
        total += sum(1 for i in range(COMMANDS) if (root / f"c{i}").is_file())
    return total


def worldtree(farm: Farm, base: Path, work: Path, forks: int) -> tuple[float, float]:
    d = work / "worldtree"
    (d / "templates").mkdir(parents=True)
    lines = ["defaults:", f"  user: {farm.user}", f"  key_file: {farm.client_key}",
             f"  known_hosts: {farm.known_hosts}", "hosts:"]
    lines += [f"  {s.name}: {{address: 127.0.0.1, port: {s.port}, vars: {{root: {base / s.name}}}}}"
              for s in farm.servers]
    lines += ["groups:", "  farm: [" + ", ".join(s.name for s in farm.servers) + "]"]
    (d / "inventory.yaml").write_text("\n".join(lines) + "\n")
    tasks = []
    for i in range(DIRS):
        tasks.append(f"  - {{name: d{i}, op: file.directory, with: {{path: '{{{{ root }}}}/d{i}', mode: '0755'}}}}")
    for i in range(FILES):
        tasks.append(f"  - {{name: f{i}, op: file.file, with: {{path: '{{{{ root }}}}/d{i % DIRS}/f{i}.txt', "
                     f"content: \"file {i}\\n\"}}, needs: [d{i % DIRS}]}}")
    for i in range(LINES):
        tasks.append(f"  - {{name: l{i}, op: file.line, with: {{path: '{{{{ root }}}}/l{i}.conf', "
                     f"line: key{i}=on, match: '^key{i}='}}}}")
    for i in range(TEMPLATES):
        (d / "templates" / f"t{i}.j2").write_text(TEMPLATE.replace("{{ index }}", str(i)))
        tasks.append(f"  - {{name: t{i}, op: file.template, with: {{src: templates/t{i}.j2, "
                     f"dest: '{{{{ root }}}}/t{i}.conf'}}}}")
    for i in range(COMMANDS):
        tasks.append(f"  - {{name: c{i}, op: command, with: {{run: 'echo x > {{{{ root }}}}/c{i}', "
                     f"creates: '{{{{ root }}}}/c{i}'}}}}")
    text = "\n".join(tasks)
    (d / "playbook.yaml").write_text(f"name: bench\nhosts: [farm]\nvars: {{name: bench, port: 8080}}\n"
                                     f"tasks:\n{text}\n")
    argv = [str(Path(sys.executable).parent / "worldtree"), "apply", "playbook.yaml", "-i", "inventory.yaml",
            "--forks", str(forks), "--detailed-exitcode"]
    first = _timed(argv, d)
    proc = subprocess.run(argv, cwd=d, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 or "No changes." not in proc.stdout:
        raise RuntimeError(f"worldtree: the second apply changed something (exit {proc.returncode})\n"
                           f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    second = _timed(argv, d)
    return first, second


def pyinfra(farm: Farm, base: Path, work: Path, forks: int) -> tuple[float, float]:
    d = work / "pyinfra"
    (d / "templates").mkdir(parents=True)
    hosts = ",\n".join(
        f"    ({s.name!r}, {{'ssh_hostname': '127.0.0.1', 'ssh_port': {s.port}, 'ssh_user': {farm.user!r}, "
        f"'ssh_key': {str(farm.client_key)!r}, 'ssh_known_hosts_file': {str(farm.known_hosts)!r}, "
        f"'root': {str(base / s.name)!r}}})" for s in farm.servers)
    (d / "inventory.py").write_text(f"farm = [\n{hosts},\n]\n")
    ops = ["from io import StringIO", "from pyinfra import host", "from pyinfra.operations import files, server",
           "root = host.data.root"]
    ops += [f"files.directory(name='d{i}', path=f'{{root}}/d{i}', mode='755')" for i in range(DIRS)]
    ops += [f"files.put(name='f{i}', src=StringIO('file {i}\\n'), dest=f'{{root}}/d{i % DIRS}/f{i}.txt', "
            f"mode='644')" for i in range(FILES)]
    ops += [f"files.line(name='l{i}', path=f'{{root}}/l{i}.conf', line='^key{i}=.*', replace='key{i}=on')"
            for i in range(LINES)]
    ops += [f"files.template(name='t{i}', src='templates/t{i}.j2', dest=f'{{root}}/t{i}.conf', name_='bench', "
            f"port=8080)" for i in range(TEMPLATES)]
    ops += [f"server.shell(name='c{i}', commands=[f'test -e {{root}}/c{i} || echo x > {{root}}/c{i}'])"
            for i in range(COMMANDS)]
    (d / "deploy.py").write_text("\n".join(ops) + "\n")
    for i in range(TEMPLATES):  # pyinfra's template() takes `name` for the operation: pass the var as name_
        (d / "templates" / f"t{i}.j2").write_text(TEMPLATE.replace("{{ index }}", str(i))
                                                  .replace("{{ name }}", "{{ name_ }}"))
    argv = [str(Path(sys.executable).parent / "pyinfra"), "-y", "--parallel", str(forks), "inventory.py",
            "deploy.py"]
    return _timed(argv, d), _timed(argv, d)


def ansible(exe: str, farm: Farm, base: Path, work: Path, forks: int) -> tuple[float, float]:
    d = work / "ansible"
    (d / "templates").mkdir(parents=True)
    for i in range(TEMPLATES):
        (d / "templates" / f"t{i}.j2").write_text(TEMPLATE.replace("{{ index }}", str(i)))
    inv = ["[farm]"] + [f"{s.name} ansible_host=127.0.0.1 ansible_port={s.port} root={base / s.name}"
                        for s in farm.servers]
    inv += ["", "[farm:vars]", f"ansible_user={farm.user}", f"ansible_ssh_private_key_file={farm.client_key}",
            f"ansible_ssh_common_args='-o UserKnownHostsFile={farm.known_hosts}'",
            "ansible_python_interpreter=/usr/bin/python3"]
    (d / "hosts.ini").write_text("\n".join(inv) + "\n")
    (d / "ansible.cfg").write_text(f"[defaults]\nforks = {forks}\nhost_key_checking = False\n"
                                   "interpreter_python = /usr/bin/python3\n[ssh_connection]\npipelining = True\n")
    t: list[str] = []
    t += [f"    - file: {{path: '{{{{ root }}}}/d{i}', state: directory, mode: '0755'}}" for i in range(DIRS)]
    t += [f"    - copy: {{dest: '{{{{ root }}}}/d{i % DIRS}/f{i}.txt', content: \"file {i}\\n\", mode: '0644'}}"
          for i in range(FILES)]
    t += [f"    - lineinfile: {{path: '{{{{ root }}}}/l{i}.conf', regexp: '^key{i}=', line: key{i}=on}}"
          for i in range(LINES)]
    t += [f"    - template: {{src: templates/t{i}.j2, dest: '{{{{ root }}}}/t{i}.conf'}}" for i in range(TEMPLATES)]
    t += [f"    - command: {{cmd: 'touch {{{{ root }}}}/c{i}', creates: '{{{{ root }}}}/c{i}'}}"
          for i in range(COMMANDS)]
    (d / "site.yml").write_text("- hosts: farm\n  gather_subset: [min]\n  vars: {name: bench, port: 8080}\n"
                                "  tasks:\n" + "\n".join(t) + "\n")
    argv = [exe, "-i", "hosts.ini", "site.yml"]
    env = {"ANSIBLE_CONFIG": str(d / "ansible.cfg")}
    return _timed(argv, d, env), _timed(argv, d, env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--forks", type=int, default=20)
    parser.add_argument("--ansible", default=shutil.which("ansible-playbook"))
    parser.add_argument("--skip", action="append", default=[], help="worldtree, pyinfra or ansible")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    farm = start_farm(args.hosts, password_servers=0)
    work = Path(tempfile.mkdtemp(prefix="wt-bench-ops-", dir="/tmp"))
    os.chmod(work, 0o755)
    results: dict[str, dict[str, float]] = {}
    notes: dict[str, str] = {}
    expected = args.hosts * 30
    try:
        contenders = {"worldtree": lambda base: worldtree(farm, base, work, args.forks),
                      "pyinfra": lambda base: pyinfra(farm, base, work, args.forks)}
        if args.ansible:
            contenders["ansible"] = lambda base: ansible(args.ansible, farm, base, work, args.forks)
        else:
            notes["ansible"] = "not installed (pip install ansible-core; pass --ansible PATH)"
        for name, fn in contenders.items():
            if name in args.skip:
                continue
            base = work / f"{name}-hosts"
            _roots(farm, base)
            try:
                first, second = fn(base)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                notes[name] = f"failed: {str(exc).splitlines()[0]}"
                print(exc, file=sys.stderr)
                continue
            done = _count(base, farm)
            if done != expected:
                notes[name] = f"left {done} of {expected} expected paths"
            results[name] = {"first": first, "second": second}
    finally:
        farm.stop()
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps({"hosts": args.hosts, "operations": 30, "forks": args.forks, "seconds": results,
                          "notes": notes}))
        return 0
    print(f"{args.hosts} hosts x 30 operations, forks {args.forks}")
    wt = results.get("worldtree")
    for name, r in results.items():
        ratio = ""
        if wt and name != "worldtree":
            ratio = f"   ({r['first'] / wt['first']:.1f}x / {r['second'] / wt['second']:.1f}x worldtree's time)"
        print(f"  {name:<10} first {r['first']:7.2f} s   second {r['second']:7.2f} s{ratio}")
    for name, note in notes.items():
        print(f"  {name}: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
