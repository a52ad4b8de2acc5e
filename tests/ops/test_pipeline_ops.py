"""``op:`` steps in pipelines, through ``worldtree run`` / ``validate`` as a user runs them:
plan line in the log, second run changes nothing, ``on_failure: rollback`` restores byte for
byte, located errors for unknown operations and bad ``with:``, secrets masked, local ``ops/``."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ops_helpers import farm_inventory, tree
from sshd_farm import Farm

from worldtree.testing.stores import pg_unavailable_reason, store_url


def wt(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "XDG_STATE_HOME": str(cwd / "state"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "worldtree.cli.main", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=60)


def pipeline(tmp_path: Path, steps: str, on_failure: str = "stop") -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(f"name: ops\non_failure: {on_failure}\njobs:\n  deploy:\n    steps:\n{steps}")
    return path


@pytest.mark.slow
def test_op_step_changes_then_reports_no_change(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    pipeline(tmp_path, f"""      - name: dir
        op: file.directory
        with: {{path: {root}/app, mode: "0750"}}
      - name: conf
        op: file.file
        with: {{path: {root}/app/app.conf, content: "port=8080\\n", mode: "0640"}}
""")
    first = wt(tmp_path, "run", "p.yaml")
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"file.directory: change: create directory {root}/app (mode 0750)" in first.stdout
    assert f"file.file: change: create {root}/app/app.conf (10 bytes" in first.stdout
    assert (root / "app" / "app.conf").read_text() == "port=8080\n"
    assert (root / "app" / "app.conf").stat().st_mode & 0o777 == 0o640
    after = tree(root)
    second = wt(tmp_path, "run", "p.yaml")
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"file.directory: no change: directory {root}/app exists with mode 0750" in second.stdout
    assert f"file.file: no change: {root}/app/app.conf has this content and mode 0640" in second.stdout
    assert "changed" not in second.stdout.replace("unchanged", "")
    assert tree(root) == after


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The run store of ``worldtree run`` (the engine's rollback of completed nodes reads it)."""
    if request.param == "postgres" and (reason := pg_unavailable_reason()):
        pytest.skip(f"!!! PostgreSQL tests skipped: {reason}")
    with store_url(request.param, tmp_path) as url:
        yield url


@pytest.mark.slow
def test_on_failure_rollback_restores_byte_for_byte(tmp_path: Path, store: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "app.conf").write_bytes(b"old\x00bytes\n")
    (root / "app.conf").chmod(0o600)
    (root / "features").write_text("cache=off\nother=1")
    before = tree(root)
    pipeline(tmp_path, f"""      - name: conf
        op: file.file
        with: {{path: {root}/app.conf, content: "new\\n", mode: "0644"}}
      - name: flag
        op: file.line
        with: {{path: {root}/features, line: "cache=on", match: "^cache="}}
      - name: link
        op: file.link
        with: {{path: {root}/current, target: /nowhere}}
      - name: boom
        command: "false"
""", on_failure="rollback")
    records = tmp_path / "state" / "worldtree" / "op-records"
    (records / "old-run").mkdir(parents=True)
    (records / "recent-run").mkdir()
    os.utime(records / "old-run", (time.time() - 8 * 86400,) * 2)
    proc = wt(tmp_path, "run", "p.yaml", env={"WORLDTREE_STORE": store})
    assert proc.returncode == 1
    assert not (records / "old-run").exists() and (records / "recent-run").exists()  # week-old records pruned
    assert "file.file: changed" in proc.stdout and "file.line: changed" in proc.stdout
    assert proc.stdout.count("rolled back") >= 3, proc.stdout
    assert tree(root) == before
    assert not any((tmp_path / "state").rglob("*.pickle"))  # records are dropped once used


@pytest.mark.slow
def test_rollback_of_an_unchanged_step_touches_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "f").write_text("same\n")
    (root / "f").chmod(0o644)
    pipeline(tmp_path, f"""      - name: conf
        op: file.file
        with: {{path: {root}/f, content: "same\\n"}}
      - name: boom
        command: "echo changed-by-hand > {root}/f; false"
""", on_failure="rollback")
    proc = wt(tmp_path, "run", "p.yaml")
    assert proc.returncode == 1 and "no change" in proc.stdout
    assert "nothing to roll back" in proc.stdout
    assert (root / "f").read_text() == "changed-by-hand\n"  # the op did not change it, so it does not undo it


def test_unknown_op_and_bad_with_are_located(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "name: bad\njobs:\n  j:\n    steps:\n"
        "      - name: a\n        op: file.fille\n        with: {path: /tmp/x}\n"
        "      - name: b\n        op: file.directory\n        with: {path: relative, colour: red}\n"
        "      - name: c\n        op: file.file\n        engine: docker\n        with: {path: /x, content: y}\n")
    (tmp_path / "q.yaml").write_text("jobs:\n  j:\n    steps:\n      - name: d\n        command: echo\n"
                                     "        with: {path: /x}\n")
    for command in ("validate", "run"):
        proc = wt(tmp_path, command, "p.yaml")
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        lines = proc.stderr.splitlines()
        assert any(line.startswith("p.yaml:6:13: error: unknown operation 'file.fille'; did you mean "
                                   "'file.file'?") for line in lines), proc.stderr
        assert "p.yaml:10:22: error: 'relative' is not an absolute path" in proc.stderr
        assert ("p.yaml:10:32: error: unknown argument 'colour' of file.directory; "
                "it takes owner, group, path, mode") in proc.stderr
        assert ("p.yaml:12:13: error: an `op:` step runs on this machine or over ssh://; it cannot run on engine "
                "'docker'") in proc.stderr
    proc = wt(tmp_path, "validate", "q.yaml")
    assert proc.returncode == 2
    assert proc.stderr.startswith("q.yaml:4:9: error: jobs.j.steps[0]: `with` gives the arguments of an `op`")


@pytest.mark.slow
def test_template_and_secret_masked(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "app.j2").write_text("stage={{ env.STAGE }}\n")
    pipeline(tmp_path, f"""      - name: tpl
        op: file.template
        environment: {{STAGE: prod}}
        with: {{src: templates/app.j2, dest: {root}/app.conf}}
      - name: token
        op: file.file
        with: {{path: "{root}/${{TOKEN_PATH}}", content: "t"}}
""")
    proc = wt(tmp_path, "run", "p.yaml", env={"TOKEN_PATH": "s3cr3t-name"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (root / "app.conf").read_text() == "stage=prod\n"
    assert (root / "s3cr3t-name").read_text() == "t"
    assert "s3cr3t-name" not in proc.stdout + proc.stderr
    assert f"change: create {root}/***" in proc.stdout


@pytest.mark.slow
def test_operation_from_local_ops_folder(tmp_path: Path) -> None:
    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "stamp.py").write_text('''
from pydantic import BaseModel
from worldtree.ops.operation import Args, Operation, Planned


class StampArgs(Args):
    path: str


class Stamp(Operation):
    """site.stamp: the file holds "stamped"."""

    name = "site.stamp"
    args_model = StampArgs

    async def precheck(self, conn):
        state = await conn.stat(self.args.path)
        return (await conn.read(self.args.path)) if state.exists else None

    def plan(self, state):
        if state == b"stamped":
            return Planned("none", "already stamped")
        return Planned("change", f"stamp {self.args.path}")

    async def run(self, conn, state):
        await conn.write(self.args.path, b"stamped", 0o644)
        return state

    async def rollback(self, conn, record):
        await conn.remove(self.args.path)
''')
    target = tmp_path / "stamp.txt"
    pipeline(tmp_path, f"""      - name: s
        op: site.stamp
        with: {{path: {target}}}
""")
    first = wt(tmp_path, "run", "p.yaml")
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"site.stamp: change: stamp {target}" in first.stdout and target.read_bytes() == b"stamped"
    second = wt(tmp_path, "run", "p.yaml")
    assert "site.stamp: no change: already stamped" in second.stdout
    (tmp_path / "ops" / "broken.py").write_text("x = 1\nraise RuntimeError('nope')\n")
    third = wt(tmp_path, "run", "p.yaml")
    assert third.returncode == 1
    broken = f"{tmp_path / 'ops' / 'broken.py'}:2:1: error: cannot import this operations file"
    assert broken in third.stdout + third.stderr


@pytest.mark.slow
def test_op_step_over_an_ssh_engine(tmp_path: Path, farm: Farm, user_root: Path) -> None:
    """engine: ssh://... : the operation runs here and changes the farm host over SFTP; rollback too."""
    server = farm.servers[0]
    target = user_root / "remote.conf"
    target.write_text("before\n")
    os.chown(target, pwd.getpwnam(farm.user).pw_uid, -1)
    before = tree(user_root)
    engine = (f"ssh://{farm.user}@127.0.0.1:{server.port}?key_file={farm.client_key}"
              f"&known_hosts={farm.known_hosts}")
    step = f"""      - name: conf
        op: file.file
        engine: "{engine}"
        with: {{path: {target}, content: "after\\n", mode: "0640"}}
"""
    pipeline(tmp_path, step + "      - name: boom\n        command: \"false\"\n", on_failure="rollback")
    proc = wt(tmp_path, "run", "p.yaml")
    assert proc.returncode == 1 and "file.file: change: update" in proc.stdout, proc.stdout + proc.stderr
    assert "file.file: rolled back" in proc.stdout and tree(user_root) == before
    pipeline(tmp_path, step)
    first = wt(tmp_path, "run", "p.yaml")
    assert first.returncode == 0 and target.read_text() == "after\n", first.stdout + first.stderr
    assert target.stat().st_uid == pwd.getpwnam(farm.user).pw_uid  # written by the farm's user: over SSH
    second = wt(tmp_path, "run", "p.yaml")
    assert f"file.file: no change: {target} has this content and mode 0640" in second.stdout


@pytest.mark.slow
def test_op_step_fanned_out_over_inventory_hosts(tmp_path: Path, farm: Farm, user_root: Path) -> None:
    """A job with ``hosts:``: one op node per host, each connecting to its host (URL from the inventory)."""
    (tmp_path / "inv.yaml").write_text(farm_inventory(farm, user_root))
    (tmp_path / "p.yaml").write_text(
        "name: fan\ninventory: inv.yaml\njobs:\n  conf:\n    hosts: [farm]\n    steps:\n"
        f"      - name: f\n        op: file.line\n        with: {{path: \"{user_root}/${{WORLDTREE_HOST}}.conf\", "
        "line: \"role=web\"}\n")
    first = wt(tmp_path, "run", "p.yaml")
    assert first.returncode == 0, first.stdout + first.stderr
    uid = pwd.getpwnam(farm.user).pw_uid
    for s in farm.servers:
        path = user_root / f"{s.name}.conf"
        assert path.read_text() == "role=web\n" and path.stat().st_uid == uid  # written over SSH by the farm user
    for s in farm.servers:  # each host its own plan line, with its own path
        assert f"file.line: change: create {user_root}/{s.name}.conf" in first.stdout
    second = wt(tmp_path, "run", "p.yaml")
    assert second.stdout.count("file.line: no change:") == len(farm.servers), second.stdout


def test_an_operation_that_breaks_is_one_masked_line(tmp_path: Path) -> None:
    """An exception no operation meant to raise (here a RuntimeError quoting its expanded argument)
    printed a traceback holding the secret; now one masked line, exit 1."""
    import json

    from worldtree.ops.pipeline_step import OPERATION_BROKE

    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "breaks.py").write_text('''
from worldtree.ops.operation import Args, Operation, Planned


class BreaksArgs(Args):
    path: str


class Breaks(Operation):
    name = "site.breaks"
    args_model = BreaksArgs

    async def precheck(self, conn):
        return None

    def plan(self, state):
        return Planned("change", "break")

    async def run(self, conn, state):
        raise RuntimeError(f"cannot handle {self.args.path}")

    async def rollback(self, conn, record):
        pass
''')
    spec = {"op": "site.breaks", "with": {"path": "/x/${TOKEN}"}, "base_dir": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "worldtree.ops.pipeline_step", "run", json.dumps(spec)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "TOKEN": "s3cr3t-value", "XDG_STATE_HOME": str(tmp_path / "state")})
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "s3cr3t-value" not in proc.stdout + proc.stderr
    assert f"error: {OPERATION_BROKE}: RuntimeError: cannot handle /x/***" in proc.stderr


def test_a_literal_ssh_password_of_an_op_step_is_refused_at_load(tmp_path: Path) -> None:
    """An `op:` node carries its ssh:// URL in its command, which literal-credential masking does not
    reach: plans and stored runs showed the password. A literal one is a located error; ${NAME} loads."""
    from worldtree.compile.loader import load_pipeline_text
    from worldtree.errors import SpecError

    text = ("name: s\njobs:\n  a:\n    engine: 'ssh://deploy:{pw}@127.0.0.1:1'\n    secrets: [PW]\n    steps:\n"
            "      - name: f\n        op: file.file\n        with: {{path: /tmp/x, content: hi}}\n")
    with pytest.raises(SpecError) as info:
        load_pipeline_text(text.format(pw="Lit3ral/Pw"), "p.yaml")
    (problem,) = [d for d in info.value.diagnostics if d.severity == "error"]
    assert (problem.line, problem.col) == (8, 13) and "has its password written in the file" in problem.message
    assert "Lit3ral" not in str(info.value)
    load_pipeline_text(text.format(pw="${PW}"), "p.yaml")


def test_a_step_whose_chown_fails_leaves_the_host_as_it_was(tmp_path: Path) -> None:
    """file.file wrote its bytes, file.directory made its directories, then the chown failed: the step
    failed with no record, so no rollback could undo them. Here, in a user namespace where uid 12345
    does not exist (chown: EINVAL, as a login user may not chown to root: EPERM), nothing is left."""
    import json
    import shutil

    unshare = shutil.which("unshare")
    probe = subprocess.run([unshare or "unshare", "--user", "--map-root-user", "true"], capture_output=True)
    if unshare is None or probe.returncode != 0:
        pytest.skip("user namespaces are not available here (unshare --user)")
    existing = tmp_path / "f"
    existing.write_text("old\n")
    existing.chmod(0o666)
    steps = [("file.file", {"path": str(existing), "content": "new\n"}),
             ("file.file", {"path": str(tmp_path / "g"), "content": "x"}),
             ("file.directory", {"path": str(tmp_path / "d" / "e")})]
    for op, args in steps:
        spec = json.dumps({"op": op, "with": {**args, "owner": 12345}})
        proc = subprocess.run([unshare or "unshare", "--user", "--map-root-user", sys.executable, "-m",
                               "worldtree.ops.pipeline_step", "run", spec], capture_output=True, text=True,
                              timeout=60, env={**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")})
        assert proc.returncode == 1 and "Invalid argument" in proc.stderr, proc.stdout + proc.stderr
    assert existing.read_text() == "old\n" and existing.stat().st_mode & 0o777 == 0o666
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]
