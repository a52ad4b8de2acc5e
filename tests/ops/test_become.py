"""``become`` (sudo) and ``proxy_jump`` (bastion).

This machine has no sudo, so ``become`` runs through a stand-in ``sudo`` script (a real
subprocess, named by the inventory's ``become_exe``): it reads the password the way sudo -S does
(a line on stdin), refuses a wrong one with sudo's words, and runs the command as ``-u USER``
with ``runuser`` when it runs as root (locally: a real switch to a throwaway user), or as
itself on the farm (whose user cannot switch). ``proxy_jump`` goes through one farm host to
another (asyncssh ``tunnel=``)."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from ops_helpers import farm_inventory, run_playbook, tree
from sshd_farm import Farm

from worldtree.errors import SpecError
from worldtree.ops.apply import ApplyPlan, Outcome, apply_plan, build_plan
from worldtree.ops.become import BecomeConnection
from worldtree.ops.command import sh
from worldtree.ops.connection import LocalConnection
from worldtree.ops.files import FileAbsent, FileDirectory, FileFile, FileLine, FileLink
from worldtree.ops.inventory import load_inventory_text
from worldtree.ops.operation import OpContext, Operation, OpError
from worldtree.ops.playbook import load_playbook

PASSWORD = "s3cret-sudo-pw"

FAKE_SUDO = """#!/bin/sh
echo "$*" >> {log}
user=root; need=0
while [ $# -gt 0 ]; do case "$1" in
  -k|-H|-n) shift;; -S) need=1; shift;; -p) shift 2;; -u) user="$2"; shift 2;; --) shift; break;; *) break;;
esac; done
if [ $need = 1 ]; then
  IFS= read -r pw
  if [ "$pw" != {password} ]; then
    echo "Sorry, try again." >&2; echo "sudo: 1 incorrect password attempt" >&2; exit 1
  fi
fi
if [ "$(id -u)" = 0 ]; then exec runuser -u "$user" -- "$@"; else exec "$@"; fi
"""


def fake_sudo(folder: Path) -> tuple[Path, Path]:
    log = folder / "sudo.log"
    exe = folder / "sudo"
    exe.write_text(FAKE_SUDO.format(log=log, password=PASSWORD))
    exe.chmod(0o755)
    log.touch()
    log.chmod(0o666)
    return exe, log


@pytest.fixture
def become_user() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("switches users with runuser: needs root")
    name = f"wt-test-{secrets.token_hex(3)}"
    subprocess.run(["useradd", "-M", "-s", "/bin/sh", name], check=True)
    yield name
    subprocess.run(["userdel", name], capture_output=True)


async def apply_env(path: Path, inventory: str) -> tuple[ApplyPlan, Outcome]:
    """Plan and apply as ``worldtree apply`` does, ``${NAME}`` read from the environment."""
    plan = await build_plan(load_playbook(path), load_inventory_text(inventory, "inv.yaml"), env=dict(os.environ))
    try:
        return plan, await apply_plan(plan)
    finally:
        await plan.close()


def op(cls: type[Operation], **args: object) -> Operation:
    return cls(cls.args_model.model_validate(args), OpContext(Path("/")))


async def test_local_become_switches_user_and_keeps_the_contract(tmp_path: Path, become_user: str,
                                                                 request: pytest.FixtureRequest) -> None:
    exe, log = fake_sudo(tmp_path)
    root = Path(tempfile.mkdtemp(prefix="wt-become-", dir="/tmp"))  # pytest's tmp_path is root's alone (0700)
    root.chmod(0o755)
    request.addfinalizer(lambda: shutil.rmtree(root, ignore_errors=True))
    os.chown(root, pwd.getpwnam(become_user).pw_uid, -1)
    (root / "keep.conf").write_text("a=0\n")
    os.chown(root / "keep.conf", pwd.getpwnam(become_user).pw_uid, -1)
    before = tree(root)
    conn = BecomeConnection(LocalConnection(), become_user, PASSWORD, str(exe))
    ops = [op(FileDirectory, path=f"{root}/d", mode="0750"), op(FileFile, path=f"{root}/d/f", content="x\n"),
           op(FileLine, path=f"{root}/keep.conf", line="a=1", match="^a="),
           op(FileLink, path=f"{root}/cur", target="d/f"), op(FileAbsent, path=f"{root}/keep.conf")]
    try:
        records = []
        for o in ops:
            state = await o.precheck(conn)
            assert o.plan(state).kind == "change"
            records.append(await o.run(conn, state))
        uid = pwd.getpwnam(become_user).pw_uid
        assert (root / "d").stat().st_uid == uid and (root / "d" / "f").stat().st_uid == uid
        assert (root / "d" / "f").read_text() == "x\n" and (root / "cur").readlink() == Path("d/f")
        assert not (root / "keep.conf").exists()
        for o in (ops[0], ops[1], ops[3]):  # a second run: no change (keep.conf is gone: file.absent ran)
            assert o.plan(await o.precheck(conn)).kind == "none"
        for o, record in reversed(list(zip(ops, records, strict=True))):
            await o.rollback(conn, record)
        assert tree(root) == before
        out = await conn.run(sh("id -un"))
        assert out.stdout.strip() == become_user
        scratch = conn._scratch
    finally:
        await conn.close()
    assert scratch is not None and not Path(scratch).exists()
    calls = log.read_text()
    assert PASSWORD not in calls and f"-k -S -p  -H -u {become_user} -- sh -c" in calls  # never on a command line
    wrong = BecomeConnection(LocalConnection(), become_user, "wrong-password", str(exe))
    with pytest.raises(OpError) as info:
        await wrong.stat("/")
    assert str(info.value) == f"become: sudo -u {become_user} on local: the password was refused"


async def test_become_over_ssh_from_the_inventory(farm: Farm, user_root: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    exe, log = fake_sudo(user_root)
    os.chown(log, pwd.getpwnam(farm.user).pw_uid, -1)
    inventory = farm_inventory(farm, user_root).replace(
        "defaults:\n", f"defaults:\n  become: true\n  become_exe: {exe}\n  become_password: ${{BECOME_PW}}\n")
    path = tmp_path / "play.yaml"
    path.write_text("hosts: [farm]\ntasks:\n  - name: f\n    op: file.file\n"
                    "    with: {path: \"{{ root }}.conf\", content: \"hello\\n\"}\n"
                    "  - name: c\n    op: command\n"
                    "    with: {run: \"echo $0 > {{ root }}.who\", creates: \"{{ root }}.who\"}\n")
    with pytest.raises(SpecError) as info:
        await apply_env(path, inventory)
    assert "become_password uses ${BECOME_PW}, which is not set" in str(info.value)
    monkeypatch.setenv("BECOME_PW", PASSWORD)
    plan, outcome = await apply_env(path, inventory)
    assert outcome is not None and outcome.changed == 2 * len(farm.servers), [s.error for s in plan.steps()]
    for s in farm.servers:
        assert (user_root / f"{s.name}.conf").read_text() == "hello\n"
    plan, outcome = await apply_env(path, inventory)
    assert outcome is not None and outcome.ok == 2 * len(farm.servers)
    calls = log.read_text()
    assert calls.count("-k -S -p  -H -u root -- sh -c") >= 4 and PASSWORD not in calls
    monkeypatch.setenv("BECOME_PW", "wrong-" + PASSWORD)
    (user_root / f"{farm.servers[0].name}.conf").unlink()
    with pytest.raises(SpecError) as info:
        await apply_env(path, inventory)
    assert "the password was refused" in str(info.value) and PASSWORD not in str(info.value)


async def test_proxy_jump_through_a_farm_host(farm: Farm, user_root: Path, tmp_path: Path) -> None:
    first, second = farm.servers[0], farm.servers[1]
    inventory = farm_inventory(farm, user_root).replace(
        f"  {second.name}: {{address: 127.0.0.1,", f"  {second.name}: {{proxy_jump: {first.name}, address: 127.0.0.1,")
    assert "proxy_jump" in inventory
    path = tmp_path / "play.yaml"
    path.write_text(f"hosts: [{second.name}]\ntasks:\n  - name: c\n    op: command\n"
                    "    with: {run: \"echo $SSH_CONNECTION > {{ root }}.via\", creates: \"{{ root }}.via\"}\n")
    plan, outcome = await run_playbook(path, inventory)
    assert outcome is not None and outcome.changed == 1, [s.error for s in plan.steps()]
    assert (user_root / f"{second.name}.via").read_text().split()[3] == str(second.port)
    # the jump host is really on the path: a dead bastion makes the host unreachable
    dead = inventory.replace(f"proxy_jump: {first.name}", "proxy_jump: bastion").replace(
        "hosts:\n", "hosts:\n  bastion: {address: 127.0.0.1, port: 1}\n")
    with pytest.raises(SpecError) as info:
        await run_playbook(path, dead)
    assert f"ssh {second.name}: through proxy_jump bastion:" in str(info.value)
    with pytest.raises(SpecError) as info:
        await run_playbook(path, inventory.replace(f"proxy_jump: {first.name}", "proxy_jump: nosuch"))
    assert "proxy_jump names unknown host 'nosuch'" in str(info.value)


async def test_task_level_become(tmp_path: Path, become_user: str, monkeypatch: pytest.MonkeyPatch,
                                 request: pytest.FixtureRequest) -> None:
    """``become``/``become_user`` on a task: only that task goes through sudo (here the stand-in,
    first on PATH, without a password: ``sudo -n``)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _, log = fake_sudo(bin_dir)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    root = Path(tempfile.mkdtemp(prefix="wt-become-", dir="/tmp"))
    root.chmod(0o777)
    request.addfinalizer(lambda: shutil.rmtree(root, ignore_errors=True))
    path = tmp_path / "play.yaml"
    path.write_text(f"hosts: local\ntasks:\n"
                    f"  - {{name: mine, op: file.file, with: {{path: {root}/mine, content: a}}}}\n"
                    f"  - name: theirs\n    op: file.file\n    become: true\n    become_user: {become_user}\n"
                    f"    with: {{path: {root}/theirs, content: b}}\n")
    plan, outcome = await run_playbook(path)
    assert outcome is not None and outcome.changed == 2, [s.error for s in plan.steps()]
    assert (root / "mine").stat().st_uid == os.geteuid()
    assert (root / "theirs").stat().st_uid == pwd.getpwnam(become_user).pw_uid
    assert f"-n -H -u {become_user} -- sh -c" in log.read_text()
    plan, outcome = await run_playbook(path)
    assert outcome is not None and outcome.ok == 2
    path.write_text(path.read_text().replace("become: true", "become: yes-please"))
    with pytest.raises(SpecError) as info:
        await run_playbook(path)
    assert "play.yaml:6:13: error: `become` is true or false" in str(info.value)
