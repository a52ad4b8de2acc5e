"""The same operations over real sshd on loopback (SFTP writes, exec for commands), two hosts at once."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from ops_cases import CASES, setup_all, write_playbook
from ops_helpers import farm_inventory, run_playbook, tree
from sshd_farm import Farm

ALL = list(CASES)


def _prepare(farm: Farm, root: Path) -> None:
    uid = os.stat(root).st_uid
    for server in farm.servers:
        setup_all(root / server.name, ALL)
        for dirpath, dirnames, filenames in os.walk(root / server.name):
            for name in [dirpath, *(os.path.join(dirpath, n) for n in [*dirnames, *filenames])]:
                os.lchown(name, uid, -1)


async def test_every_operation_over_ssh_twice(farm: Farm, user_root: Path, tmp_path: Path) -> None:
    _prepare(farm, user_root)
    book = write_playbook(tmp_path, ALL, hosts="farm")
    inventory = farm_inventory(farm, user_root)
    before = tree(user_root)
    plan, _ = await run_playbook(book, inventory, check=True)
    assert plan.count("change") == len(ALL) * len(farm.servers)
    assert tree(user_root) == before  # --check changed nothing on any host
    plan, outcome = await run_playbook(book, inventory)
    assert outcome is not None and (outcome.changed, outcome.failed) == (len(ALL) * 2, 0), \
        [s.error for s in plan.steps() if s.error]
    for server in farm.servers:
        root = user_root / server.name
        assert (root / "f.txt").read_text() == "hi\n" and (root / "f.txt").stat().st_mode & 0o777 == 0o600
        assert (root / "d" / "e").stat().st_mode & 0o777 == 0o750
        assert (root / "features").read_text() == "a=1\ncache=on\nz=9\n"
        assert os.readlink(root / "current") == str(root / "d")
        assert (root / "app.conf").read_text().startswith("# demo\nport=8080\nos=Linux")
        assert not (root / "victim").exists() and (root / "ran").exists()
    first = tree(user_root)
    plan, outcome = await run_playbook(book, inventory)
    assert [s.planned.kind for s in plan.steps() if s.planned] == ["none"] * (len(ALL) * 2)
    assert outcome is not None and outcome.changed == 0 and tree(user_root) == first


async def test_rollback_over_ssh_restores_every_host(farm: Farm, user_root: Path, tmp_path: Path) -> None:
    _prepare(farm, user_root)
    before = tree(user_root)
    fail = "  - name: boom\n    op: command\n    with: {run: \"exit 3\"}\n"
    book = write_playbook(tmp_path, ALL, hosts="farm", extra_tasks=fail)
    plan, outcome = await run_playbook(book, farm_inventory(farm, user_root), on_failure="rollback")
    assert outcome is not None and outcome.failed >= 1
    assert [s.rollback for s in plan.steps() if s.rollback not in (None, "rolled back")] == []
    assert tree(user_root) == before


async def test_limit_applies_to_the_named_host_only(farm: Farm, user_root: Path, tmp_path: Path) -> None:
    from worldtree.ops.apply import apply_plan, build_plan
    from worldtree.ops.inventory import load_inventory_text
    from worldtree.ops.playbook import load_playbook

    _prepare(farm, user_root)
    book = load_playbook(write_playbook(tmp_path, ["file-content"], hosts="farm"))
    plan = await build_plan(book, load_inventory_text(farm_inventory(farm, user_root)), limit=["h1"])
    try:
        assert [h.name for h in plan.hosts] == ["h1"]
        await apply_plan(plan)
    finally:
        await plan.close()
    assert (user_root / "h1" / "f.txt").exists() and not (user_root / "h2" / "f.txt").exists()


@pytest.mark.slow
async def test_ssh_commands_keep_a_bounded_part_of_a_flood_and_time_out(farm: Farm, user_root: Path) -> None:
    from worldtree.connectors.ssh.pool import SshPool
    from worldtree.ops.command import sh
    from worldtree.ops.connection import OUTPUT_LIMIT
    from worldtree.ops.inventory import load_inventory_text
    from worldtree.ops.ssh_connection import SshConnection

    inventory = load_inventory_text(farm_inventory(farm, Path("/tmp")))
    pool = SshPool()
    try:
        conn = SshConnection(pool, inventory.target("h1"))
        result = await conn.run(sh("head -c 5000000 /dev/zero; echo done >&2; exit 3"), timeout=30)
        assert (result.exit_status, len(result.stdout), result.stderr) == (3, OUTPUT_LIMIT, "done\n")
        started = time.monotonic()
        slow = await conn.run(sh("sleep 2; echo late > " + str(user_root / "late")), timeout=0.3)
        assert slow.exit_status == 124 and slow.stderr == "timed out after 0.3 s"
        assert time.monotonic() - started < 1.5
        await asyncio.sleep(2.5)
        assert not (user_root / "late").exists()  # the remote command was stopped, not left running
    finally:
        await pool.close()
