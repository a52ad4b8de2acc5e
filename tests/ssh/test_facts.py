"""Facts over real sshd: gathered concurrently, cached per run, errors per host."""

from __future__ import annotations

import os
import platform

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
