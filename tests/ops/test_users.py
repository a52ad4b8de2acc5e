"""user.* / group.* and owner/group on file operations, as root on this machine (throwaway
``wt-test-<random>`` accounts, removed afterwards) and over the sshd farm (owner by name)."""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from ops_helpers import farm_inventory, run_playbook, tree
from sshd_farm import Farm

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creates users and chowns: needs root")


@pytest.fixture
def names() -> Iterator[tuple[str, str]]:
    token = secrets.token_hex(3)
    user, group = f"wt-test-{token}", f"wt-test-g{token}"
    yield user, group
    subprocess.run(["userdel", "-r", user], capture_output=True)
    subprocess.run(["groupdel", group], capture_output=True)


def book(tmp_path: Path, tasks: str, name: str = "play.yaml") -> Path:
    path = tmp_path / name
    path.write_text("hosts: local\ntasks:\n" + tasks)
    return path


def exists_user(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


async def test_group_and_user_present_twice_then_rollback(tmp_path: Path, names: tuple[str, str]) -> None:
    user, group = names
    home = tmp_path / "home"
    path = book(tmp_path, f"""  - {{name: g, op: group.present, with: {{name: {group}, gid: 48213}}}}
  - name: u
    op: user.present
    with: {{name: {user}, groups: [{group}], shell: /bin/sh, home: {home}, system: true}}
    needs: [g]
""")
    plan, outcome = await run_playbook(path, check=True)
    assert [s.planned.render() for s in plan.steps() if s.planned] == [
        f"change: groupadd {group} (gid 48213)",
        f"change: useradd {user} (groups {group}, shell /bin/sh, home {home}, system)"]
    assert exists_user(user) is None
    plan, outcome = await run_playbook(path)
    assert outcome is not None and outcome.changed == 2, [s.error for s in plan.steps()]
    entry = pwd.getpwnam(user)
    assert entry.pw_shell == "/bin/sh" and entry.pw_dir == str(home) and home.is_dir()
    assert user in grp.getgrnam(group).gr_mem and grp.getgrnam(group).gr_gid == 48213
    plan, outcome = await run_playbook(path)
    assert outcome is not None and (outcome.changed, outcome.ok) == (0, 2)
    assert [s.applied.render() for s in plan.steps() if s.applied] == [
        f"no change: group {group} exists (gid 48213)", f"no change: user {user} exists as wanted (uid {entry.pw_uid})"]

    # a change to an existing user, undone by rollback
    change = book(tmp_path, f"""  - {{name: u, op: user.present, with: {{name: {user}, shell: /bin/bash, groups: []}}}}
  - {{name: boom, op: command, with: {{run: "false"}}}}
""", "change.yaml")
    plan, outcome = await run_playbook(change, on_failure="rollback")
    assert plan.steps()[0].planned is not None
    assert plan.steps()[0].planned.render() == (f"change: usermod {user}: groups {group} -> -, "
                                                "shell /bin/sh -> /bin/bash")
    assert outcome is not None and outcome.rolled_back == 1
    assert pwd.getpwnam(user).pw_shell == "/bin/sh" and user in grp.getgrnam(group).gr_mem

    # creating both again is undone by rollback: the user (and the home it made) and the group go away
    subprocess.run(["userdel", "-r", user], check=True, capture_output=True)
    subprocess.run(["groupdel", group], check=True, capture_output=True)
    failing = book(tmp_path, path.read_text().split("tasks:\n", 1)[1] + BOOM, "fail.yaml")
    plan, outcome = await run_playbook(failing, on_failure="rollback")
    assert outcome is not None and outcome.rolled_back == 2, [s.rollback for s in plan.steps()]
    assert exists_user(user) is None and not home.exists()
    with pytest.raises(KeyError):
        grp.getgrnam(group)


async def test_absent_and_its_rollback(tmp_path: Path, names: tuple[str, str]) -> None:
    user, group = names
    subprocess.run(["groupadd", "-g", "48214", group], check=True)
    subprocess.run(["useradd", "-M", "-u", "48214", "-g", group, "-s", "/bin/sh", user], check=True)
    path = book(tmp_path, f"""  - {{name: u, op: user.absent, with: {{name: {user}}}}}
  - {{name: g, op: group.absent, with: {{name: {group}}}}}
    """.rstrip() + "\n")
    plan, outcome = await run_playbook(path, check=True)
    assert [s.planned.render() for s in plan.steps() if s.planned] == [
        f"change: userdel {user} (uid 48214)", f"change: groupdel {group} (gid 48214)"]
    failing = book(tmp_path, path.read_text().split("tasks:\n", 1)[1] + BOOM, "fail.yaml")
    plan, outcome = await run_playbook(failing, on_failure="rollback")
    assert outcome is not None and outcome.rolled_back == 2
    entry = pwd.getpwnam(user)
    assert (entry.pw_uid, entry.pw_gid, entry.pw_shell) == (48214, 48214, "/bin/sh")
    _, outcome = await run_playbook(path)
    assert outcome is not None and outcome.changed == 2 and exists_user(user) is None
    plan, outcome = await run_playbook(path)
    assert outcome is not None and outcome.ok == 2
    removing_home = book(tmp_path, "  - {name: u, op: user.absent, with: {name: wt-nobody-zz, remove_home: true}}\n",
                         "home.yaml")
    plan, _ = await run_playbook(removing_home, check=True)
    assert plan.steps()[0].planned is not None and plan.steps()[0].planned.kind == "none"


async def test_owner_and_group_on_files_change_no_change_rollback(tmp_path: Path, names: tuple[str, str]) -> None:
    user, group = names
    subprocess.run(["groupadd", group], check=True)
    subprocess.run(["useradd", "-M", "-g", group, user], check=True)
    uid, gid = pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid
    root = tmp_path / "root"
    root.mkdir()
    (root / "old.conf").write_text("old\n")
    (root / "dir").mkdir()
    path = book(tmp_path, f"""  - name: d
    op: file.directory
    with: {{path: {root}/dir, owner: {user}, group: {group}}}
  - {{name: f, op: file.file, with: {{path: {root}/old.conf, content: "new\\n", owner: {user}, group: {gid}}}}}
  - {{name: l, op: file.line, with: {{path: {root}/new.conf, line: a=1, owner: {uid}}}}}
""")
    before = {**tree(root), "owners": [(p.name, p.stat().st_uid, p.stat().st_gid) for p in sorted(root.iterdir())]}
    plan, _ = await run_playbook(path, check=True)
    assert [s.planned.render() for s in plan.steps() if s.planned] == [
        f"change: chown {root}/dir 0:0 -> {user}({uid}):{group}({gid})",
        f"change: update {root}/old.conf: content sha256 {OLD} -> {NEW} (4 bytes), owner 0:0 -> {user}({uid}):{gid}",
        f"change: create {root}/new.conf (4 bytes, sha256 {LINE}, mode 0644, owner {uid}:-)"]
    plan, outcome = await run_playbook(path)
    assert outcome is not None and outcome.changed == 3
    for name in ("dir", "old.conf"):
        assert ((root / name).stat().st_uid, (root / name).stat().st_gid) == (uid, gid)
    assert (root / "new.conf").stat().st_uid == uid
    plan, outcome = await run_playbook(path)
    assert outcome is not None and (outcome.changed, outcome.ok) == (0, 3), [s.applied for s in plan.steps()]

    # rollback restores bytes, modes and owners
    for p in root.iterdir():
        p.unlink() if p.is_file() else None
    (root / "old.conf").write_text("old\n")
    os.chown(root / "dir", 0, 0)
    failing = book(tmp_path, path.read_text().split("tasks:\n", 1)[1] + BOOM, "fail.yaml")
    _, outcome = await run_playbook(failing, on_failure="rollback")
    assert outcome is not None and outcome.rolled_back == 3
    after = {**tree(root), "owners": [(p.name, p.stat().st_uid, p.stat().st_gid) for p in sorted(root.iterdir())]}
    assert after == before

    # an owner that does not exist: unknown until run at planning, a clear failure when run
    missing = book(tmp_path, f"  - {{name: f, op: file.file, with: {{path: {root}/x, content: x, "
                             "owner: wt-nobody-zz}}\n", "missing.yaml")
    plan, outcome = await run_playbook(missing)
    assert plan.steps()[0].planned is not None and plan.steps()[0].planned.render().startswith(
        "unknown until run: user 'wt-nobody-zz' does not exist on the host yet; then: create")
    assert outcome is not None and outcome.failed == 1 and not (root / "x").exists()
    assert "user 'wt-nobody-zz' does not exist on local; create it first" in (plan.steps()[0].error or "")


BOOM = "  - {name: boom, op: command, with: {run: 'false'}}\n"
OLD, NEW, LINE = (hashlib.sha256(t).hexdigest()[:12] for t in (b"old\n", b"new\n", b"a=1\n"))


async def test_owner_by_name_over_ssh(farm: Farm, user_root: Path, tmp_path: Path) -> None:
    """Names resolve on the host (getent over SSH); the farm's user may not give files away, so
    the plan after the first apply is "no change" with the owner named, and a foreign owner fails."""
    inventory = farm_inventory(farm, user_root)
    path = tmp_path / "play.yaml"
    path.write_text(f"hosts: [farm]\ntasks:\n  - name: f\n    op: file.file\n"
                    f"    with: {{path: \"{{{{ root }}}}.conf\", content: x, owner: {farm.user}}}\n")
    _, outcome = await run_playbook(path, inventory)
    assert outcome is not None and outcome.changed == len(farm.servers)
    plan, outcome = await run_playbook(path, inventory)
    assert outcome is not None and outcome.ok == len(farm.servers)
    owner = f"and owner {farm.user}({pwd.getpwnam(farm.user).pw_uid}):-"
    assert all(s.applied is not None and s.applied.render().endswith(owner) for s in plan.steps())
    path.write_text(path.read_text().replace(f"owner: {farm.user}", "owner: root"))
    plan, outcome = await run_playbook(path, inventory)
    assert outcome is not None and outcome.failed >= 1
    assert any("chown" in (s.error or "") for s in plan.steps()), [s.error for s in plan.steps()]


async def test_primary_group_created_earlier_in_the_same_apply(tmp_path: Path, names: tuple[str, str]) -> None:
    user, group = names
    path = book(tmp_path, f"""  - {{name: g, op: group.present, with: {{name: {group}}}}}
  - {{name: u, op: user.present, with: {{name: {user}, group: {group}, create_home: false}}, needs: [g]}}
""")
    plan, outcome = await run_playbook(path)
    assert [s.planned.render() for s in plan.steps() if s.planned] == [
        f"change: groupadd {group}", f"unknown until run: group '{group}' does not exist on the host yet; "
                                     f"then: useradd {user} (group {group})"]
    assert outcome is not None and outcome.changed == 2, [s.error for s in plan.steps()]
    assert pwd.getpwnam(user).pw_gid == grp.getgrnam(group).gr_gid
