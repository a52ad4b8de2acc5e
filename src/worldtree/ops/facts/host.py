"""Host facts: OS, kernel, architecture, CPUs, memory and hostname of SSH hosts.

Gathered with one short command per host, concurrently over the run's pool, and cached in
the pool (one run = one cache: seed 001's "scoped cache"), so conditions and templates of a
run can read them as often as they like. :func:`gather_facts` serves ``worldtree facts``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import asyncssh
from pydantic import BaseModel

from worldtree.connectors.ssh.pool import SshPool, open_channel, translate_error
from worldtree.connectors.ssh.target import SshTarget
from worldtree.errors import BackendError, WorldtreeError
from worldtree.ops.inventory import Inventory

__all__ = ["FACTS_COMMAND", "HostFacts", "gather_facts", "host_facts", "parse_facts"]

#: POSIX sh, one ``key=value`` per line; missing tools leave a key empty rather than failing
FACTS_COMMAND = "; ".join([
    'echo "os=$(uname -s)"',
    'echo "kernel=$(uname -r)"',
    'echo "arch=$(uname -m)"',
    'echo "hostname=$(hostname 2>/dev/null || uname -n)"',
    'echo "cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc 2>/dev/null)"',
    "echo \"memory_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo 2>/dev/null)\"",
    '( . /etc/os-release 2>/dev/null; echo "distribution=$ID"; echo "distribution_version=$VERSION_ID";'
    ' echo "os_pretty=$PRETTY_NAME" )',
])


class HostFacts(BaseModel):
    hostname: str = ""
    os: str = ""
    kernel: str = ""
    arch: str = ""
    cpus: int | None = None
    memory_bytes: int | None = None
    distribution: str = ""
    distribution_version: str = ""
    os_pretty: str = ""


def parse_facts(text: str) -> HostFacts:
    """The output of :data:`FACTS_COMMAND` -> HostFacts (pure; unknown lines are ignored)."""
    raw: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            raw[key.strip()] = value.strip().strip('"')
    data: dict[str, Any] = {k: raw.get(k, "") for k in
                            ("hostname", "os", "kernel", "arch", "distribution", "distribution_version",
                             "os_pretty")}
    data["cpus"] = int(raw["cpus"]) if raw.get("cpus", "").isdigit() else None
    kb = raw.get("memory_kb", "")
    data["memory_bytes"] = int(kb) * 1024 if kb.isdigit() else None
    return HostFacts.model_validate(data)


async def host_facts(pool: SshPool, target: SshTarget) -> HostFacts:
    """Facts of one host, from the pool's cache after the first call of a run."""
    key = ("facts", *target.pool_key())
    cached = pool.cache.get(key)
    if cached is None:
        cached = asyncio.ensure_future(_gather_one(pool, target))
        pool.cache[key] = cached
    assert isinstance(cached, asyncio.Future)
    try:
        return await asyncio.shield(cached)
    except BaseException:
        if cached.done() and pool.cache.get(key) is cached:
            del pool.cache[key]  # an error is not cached: a later call tries again
        raise


async def _gather_one(pool: SshPool, target: SshTarget) -> HostFacts:
    async with pool.session(target) as conn:
        try:
            result = await open_channel(conn, lambda: conn.run(FACTS_COMMAND, check=False))
        except (asyncssh.Error, OSError) as exc:
            raise translate_error(exc, target, pool.secret_values) from None
    if result.exit_status not in (0, None):
        raise BackendError(f"ssh {target.label}: gathering facts failed (exit {result.exit_status})")
    out = result.stdout
    return parse_facts(out if isinstance(out, str) else (out or b"").decode("utf-8", "replace"))


async def gather_facts(inventory: Inventory, names: list[str], *, env: Mapping[str, str] | None = None,
                       config: Mapping[str, object] | None = None,
                       pool: SshPool | None = None) -> dict[str, dict[str, object]]:
    """Facts of the hosts ``names`` resolves to (host or group names), gathered concurrently.

    Returns ``{host: {fact: value, ...}}``; a host that cannot be reached maps to
    ``{"error": "one line naming the host"}`` instead, and the others are still gathered.
    ``env`` expands ``${SECRET}`` passwords; ``config`` takes the pool settings of
    :mod:`worldtree.connectors.ssh.pool`. Without ``pool`` a pool is opened and closed here.
    Raises KeyError for a name that is neither a host nor a group.
    """
    hosts = inventory.resolve(names)
    own = pool is None
    active = pool if pool is not None else SshPool(config)

    async def one(name: str) -> dict[str, object]:
        try:
            target = inventory.target(name, env)
            return (await host_facts(active, target)).model_dump()
        except WorldtreeError as exc:
            return {"error": str(exc)}

    try:
        results = await asyncio.gather(*(one(h) for h in hosts))
    finally:
        if own:
            await active.close()
    return dict(zip(hosts, results, strict=True))
