"""Fixtures and helpers for the operation tests (tests/ops/conftest.py re-exports them; test modules
import helpers from here, never `from conftest`: under pytest-xdist another directory's conftest
may own that module name): local trees, the loopback sshd farm, a tree checksum.

The farm is the one of tests/ssh (real OpenSSH servers on loopback); hosts write as the
farm's user, so each host's root directory is created for that user.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ssh"))

from sshd_farm import Farm, farm_or_skip

from worldtree.ops.apply import ApplyPlan, Outcome, apply_plan, build_plan
from worldtree.ops.inventory import load_inventory_text
from worldtree.ops.playbook import load_playbook


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "farm" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.ssh)


@pytest.fixture(scope="session")
def farm() -> Iterator[Farm]:
    """Two key-auth sshd on loopback."""
    yield from farm_or_skip(2, password_servers=0)


def tree(root: Path) -> dict[str, Any]:
    """Every path under ``root`` -> (kind, mode, sha256 of bytes or link target): a checksum of the tree."""
    out: dict[str, Any] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            st = path.lstat()
            rel = str(path.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                out[rel] = ("file", stat.S_IMODE(st.st_mode), hashlib.sha256(path.read_bytes()).hexdigest())
    return out


@pytest.fixture
def user_root(farm: Farm) -> Iterator[Path]:
    """A directory the farm's user owns (the hosts' files go under it)."""
    root = Path(tempfile.mkdtemp(prefix="wt-ops-", dir="/tmp"))
    root.chmod(0o755)
    os.chown(root, pwd.getpwnam(farm.user).pw_uid, -1)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def farm_inventory(farm: Farm, root: Path) -> str:
    """Inventory of the farm with ``vars.root`` = a separate directory per host."""
    lines = ["defaults:", f"  user: {farm.user}", f"  key_file: {farm.client_key}",
             f"  known_hosts: {farm.known_hosts}", "hosts:"]
    for s in farm.servers:
        lines.append(f"  {s.name}: {{address: 127.0.0.1, port: {s.port}, vars: {{root: {root / s.name}}}}}")
    lines += ["groups:", "  farm: [" + ", ".join(s.name for s in farm.servers) + "]"]
    return "\n".join(lines) + "\n"


async def run_playbook(path: Path, inventory_text: str | None = None, *, check: bool = False,
                       on_failure: Any = "stop") -> tuple[ApplyPlan, Outcome | None]:
    """Plan and (unless ``check``) apply, in process, as ``worldtree apply`` does."""
    book = load_playbook(path)
    inventory = load_inventory_text(inventory_text, "inv.yaml") if inventory_text else None
    plan = await build_plan(book, inventory)
    try:
        outcome = None if check else await apply_plan(plan, on_failure=on_failure)
    finally:
        await plan.close()
    return plan, outcome
