"""Over SSH a step runs as on the host (tests/command_cases.py): same exit code, same output;
and the one line splitter bounds what a remote endless line costs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ssh_helpers import Lines, ctx_for, key_url, node, request
from sshd_farm import Farm

from worldtree.backends.spawn import LINE_LIMIT
from worldtree.backends.ssh.backend import SshBackend

sys.path.insert(0, str(Path(__file__).parents[1]))
from command_cases import CASES, EXPECTED


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_cases_match_the_host(farm: Farm, case) -> None:  # type: ignore[no-untyped-def]
    backend = SshBackend(ctx_for(farm, ssh_config=str(farm.ssh_config)))
    out = Lines()
    try:
        n = node(case.command, engine=key_url(farm, farm.servers[0]), shell=case.shell)
        code = await backend.execute(request(n, env=dict(case.env), workdir="/"), out)
    finally:
        await backend.close()
    assert (code, out.out(), out.err()) == EXPECTED[case.name]


async def test_a_long_line_arrives_in_bounded_pieces(farm: Farm) -> None:
    size = 5 * LINE_LIMIT + 123
    backend = SshBackend(ctx_for(farm, ssh_config=str(farm.ssh_config)))
    out = Lines()
    try:
        n = node(f"head -c {size} /dev/zero | tr '\\000' x; echo; echo end", engine=key_url(farm, farm.servers[0]))
        assert await backend.execute(request(n), out) == 0
    finally:
        await backend.close()
    lines = out.out()
    assert lines[-1] == "end" and sum(map(len, lines[:-1])) == size
    assert max(map(len, lines)) <= LINE_LIMIT


async def test_close_is_idempotent_and_ends_the_pool(farm: Farm) -> None:
    never_used = SshBackend(ctx_for(farm))
    await never_used.close()
    await never_used.close()
    assert never_used.pool.opened == 0
    backend = SshBackend(ctx_for(farm, ssh_config=str(farm.ssh_config)))
    n = node("true", engine=key_url(farm, farm.servers[0]))
    assert await backend.execute(request(n), Lines()) == 0
    await backend.close()
    await backend.close()
    assert backend.pool.opened == 1 and not backend.pool._conns
    with pytest.raises(Exception, match="already closed"):
        await backend.execute(request(n), Lines())
