"""Facts over real sshd: gathered concurrently, cached per run, errors per host."""

from __future__ import annotations

import os
import platform
import socket
import time

from sshd_farm import Farm, inventory_yaml

from worldtree.connectors.ssh.pool import SshPool
from worldtree.ops.facts.host import gather_facts, parse_facts
from worldtree.ops.inventory import load_inventory_text


def test_parse_facts() -> None:
    facts = parse_facts("os=Linux\nkernel=6.1\narch=x86_64\nhostname=web1\ncpus=4\nmemory_kb=2048\n"
                        "distribution=debian\ndistribution_version=12\nos_pretty=Debian GNU/Linux 12\njunk\n")
    assert facts.cpus == 4 and facts.memory_bytes == 2048 * 1024 and facts.distribution_version == "12"
    assert parse_facts("cpus=\n").cpus is None


async def test_gather_facts_for_a_group_concurrently_and_cached(farm: Farm) -> None:
    text = inventory_yaml(farm, names=["h1", "h2"]).replace(
        "hosts:\n", "hosts:\n  dead: {address: 127.0.0.1, port: 1}\n").replace("farm: [h1, h2]",
                                                                             "farm: [h1, h2, dead]")
    inventory = load_inventory_text(text, "inv.yaml")
    pool = SshPool()
    try:
        facts = await gather_facts(inventory, ["farm"], pool=pool)
        assert list(facts) == ["h1", "h2", "dead"]
        h1 = facts["h1"]
        assert h1["os"] == "Linux" and h1["arch"] == platform.machine()
        assert h1["cpus"] == os.cpu_count() and isinstance(h1["memory_bytes"], int)
        assert h1["kernel"] == platform.release() and h1["hostname"]
        assert "connection refused" in str(facts["dead"]["error"]) and "dead" in str(facts["dead"]["error"])
        before = farm.server("h1").accepted(), pool.opened
        again = await gather_facts(inventory, ["h1"], pool=pool)
        assert again["h1"] == h1
        assert (farm.server("h1").accepted(), pool.opened) == before  # cached: no new connection
    finally:
        await pool.close()


async def test_gather_facts_waits_for_slow_hosts_at_the_same_time(farm: Farm) -> None:
    """Two hosts that accept TCP but never answer, 1.5 s connect timeout each: together they
    cost 1.5 s, not 3 s."""
    silent = [socket.create_server(("127.0.0.1", 0)) for _ in range(2)]
    try:
        hosts = "".join(f"  slow{i}: {{address: 127.0.0.1, port: {s.getsockname()[1]}, connect_timeout: 1.5}}\n"
                        for i, s in enumerate(silent))
        inventory = load_inventory_text(f"hosts:\n{hosts}", "inv.yaml")
        started = time.monotonic()
        facts = await gather_facts(inventory, ["slow0", "slow1"], config={"ssh_known_hosts": str(farm.known_hosts)})
        elapsed = time.monotonic() - started
    finally:
        for s in silent:
            s.close()
    assert all("timed out" in str(f["error"]) for f in facts.values()), facts
    assert 1.4 < elapsed < 2.6
