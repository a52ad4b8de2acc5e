"""The ssh backend against real sshd: both URL forms, config auth, reuse, kill, host keys."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import time
from pathlib import Path

import pytest
from ssh_helpers import Lines, ctx_for, key_url, node, request
from sshd_farm import Farm

from worldtree.backends.ssh.backend import SshBackend
from worldtree.errors import BackendError, ConnectError


def _key_server(farm: Farm):  # a server without password auth
    return farm.servers[0]


def _password_server(farm: Farm):
    return next(s for s in farm.servers if s.password_auth)


async def test_runs_command_streams_output_and_returns_exit_code(farm: Farm) -> None:
    server = _key_server(farm)
    backend = SshBackend(ctx_for(farm, ssh_config=str(farm.ssh_config)))
    out = Lines()
    try:
        n = node("echo one; echo two >&2; printf 'no newline'; exit 3", engine=key_url(farm, server))
        code = await backend.execute(request(n), out)
    finally:
        await backend.close()
    assert code == 3
    assert out.out() == ["one", "no newline"]
    assert out.err() == ["two"]


async def test_env_and_workdir(farm: Farm) -> None:
    server = _key_server(farm)
    backend = SshBackend(ctx_for(farm, ssh_config=str(farm.ssh_config)))
    try:
        out = Lines()
        n = node('echo "$GREETING|$(pwd)"', engine=key_url(farm, server))
        assert await backend.execute(request(n, {"GREETING": "it's a \"test\" $HOME"}), out) == 0
        assert out.out() == [f"it's a \"test\" $HOME|/home/{farm.user}"]  # no run dir there: home

        out = Lines()
        n = node("pwd", engine=key_url(farm, server), workdir="wt-sub/dir")
        assert await backend.execute(request(n), out) == 0
        assert out.out() == [f"/home/{farm.user}/wt-sub/dir"]  # relative to home, created

        out = Lines()
        n = node("pwd", engine=key_url(farm, server))
        assert await backend.execute(request(n, workdir="/tmp"), out) == 0
        assert out.out() == ["/tmp"]  # the run's workdir exists remotely: used

        out = Lines()
        n = node("echo $0; [[ 1 == 1 ]] && echo bash", engine=key_url(farm, server), shell="bash")
        assert await backend.execute(request(n), out) == 0
        assert out.out()[-1] == "bash"
    finally:
        await backend.close()


async def test_password_url_with_secret_expanded_from_env(farm: Farm) -> None:
    server = _password_server(farm)
    backend = SshBackend(ctx_for(farm, secret_values=None))
    url = f"ssh://{farm.user}:${{SSH_PASSWORD}}@127.0.0.1:{server.port}"
    out = Lines()
    try:
        req = request(node("whoami", engine=url), {"SSH_PASSWORD": farm.password})
        code = await backend.execute(req, out)
    finally:
        await backend.close()
    assert code == 0
    assert out.out() == [farm.user]
    assert "Accepted password" in server.log.read_text()


async def test_literal_password_url(farm: Farm) -> None:
    server = _password_server(farm)
    backend = SshBackend(ctx_for(farm))
    out = Lines()
    try:
        url = f"ssh://{farm.user}:{farm.password}@127.0.0.1:{server.port}"
        assert await backend.execute(request(node("echo ok", engine=url)), out) == 0
    finally:
        await backend.close()
    assert out.out() == ["ok"]


async def test_private_key_url_with_user_query(farm: Farm) -> None:
    server = _key_server(farm)
    key = base64.b64encode(farm.client_key.read_bytes()).decode()
    backend = SshBackend(ctx_for(farm))
    out = Lines()
    try:
        url = f"ssh://private_key:{key}@127.0.0.1:{server.port}?user={farm.user}"
        assert await backend.execute(request(node("whoami", engine=url)), out) == 0
        # and from a secret
        url = f"ssh://private_key:${{DEPLOY_KEY}}@127.0.0.1:{server.port}?user={farm.user}"
        assert await backend.execute(request(node("whoami", engine=url), {"DEPLOY_KEY": key}), out) == 0
    finally:
        await backend.close()
    assert out.out() == [farm.user, farm.user]


async def test_config_based_auth_by_host_alias(farm: Farm) -> None:
    """``ssh://h2``: host name, port, user, key and known_hosts all from ssh_config."""
    backend = SshBackend(ctx_for(farm, ssh_config=str(farm.ssh_config), ssh_known_hosts=None))
    out = Lines()
    try:
        assert await backend.execute(request(node("whoami", engine="ssh://h2")), out) == 0
    finally:
        await backend.close()
    assert out.out() == [farm.user]


async def test_default_user_config_from_home(farm: Farm, tmp_path, monkeypatch) -> None:
    """Without settings, ~/.ssh/config is read as `ssh` reads it."""
    from sshd_farm import write_ssh_config

    (tmp_path / ".ssh").mkdir()
    write_ssh_config(farm, tmp_path / ".ssh" / "config")
    monkeypatch.setenv("HOME", str(tmp_path))
    backend = SshBackend(ctx_for(farm, ssh_known_hosts=None))
    out = Lines()
    try:
        assert await backend.execute(request(node("whoami", engine="ssh://h3")), out) == 0
    finally:
        await backend.close()
    assert out.out() == [farm.user]


async def test_one_connection_per_host_reused_across_steps(farm: Farm) -> None:
    servers = [s for s in farm.servers if not s.password_auth]
    before = {s.name: s.accepted() for s in servers}
    backend = SshBackend(ctx_for(farm, ssh_config=str(farm.ssh_config)))
    try:
        jobs = [backend.execute(request(node(f"echo {i}", engine=key_url(farm, s))), Lines())
                for i in range(12) for s in servers]
        assert await asyncio.gather(*jobs) == [0] * len(jobs)
    finally:
        await backend.close()
    await asyncio.sleep(0.2)
    assert backend.pool.opened == len(servers)
    assert {s.name: s.accepted() - before[s.name] for s in servers} == {s.name: 1 for s in servers}


def _remote_processes(marker: str) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "pid,user,args"], capture_output=True, text=True, check=True)
    return [line for line in ps.stdout.splitlines() if marker in line and "ps -eo" not in line]


async def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("command", [
    "sleep 9876{n}",                                          # the shell's only child
    "sleep 9876{n} & sleep 9876{n}; echo never",              # a background child too
    "trap '' TERM; sleep 9876{n} & sleep 9876{n}",            # ignores TERM: needs KILL after grace
])
async def test_cancel_kills_the_remote_process_group(farm: Farm, command: str) -> None:
    server = _key_server(farm)
    marker = f"9876{len(command)}"
    backend = SshBackend(ctx_for(farm, ssh_config=str(farm.ssh_config)))
    try:
        task = asyncio.ensure_future(backend.execute(
            request(node(command.format(n=len(command)), engine=key_url(farm, server))), Lines()))
        await _wait_for(lambda: len(_remote_processes(marker)) >= 1)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 5
        assert _remote_processes(marker) == []
    finally:
        await backend.close()


async def test_timeout_kills_the_remote_process(farm: Farm) -> None:
    server = _key_server(farm)
    backend = SshBackend(ctx_for(farm, ssh_config=str(farm.ssh_config)))
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(backend.execute(request(node("sleep 98761", engine=key_url(farm, server))),
                                                   Lines()), timeout=1.0)
        assert _remote_processes("98761") == []
        # the connection is still usable afterwards
        assert await backend.execute(request(node("true", engine=key_url(farm, server))), Lines()) == 0
    finally:
        await backend.close()


async def test_host_key_mismatch_is_refused(farm: Farm, tmp_path) -> None:
    server = _key_server(farm)
    other = farm.servers[1]
    wrong = tmp_path / "known_hosts"
    kind, blob = Path(str(other.host_key) + ".pub").read_text().split()[:2]
    wrong.write_text(f"[127.0.0.1]:{server.port} {kind} {blob}\n")
    backend = SshBackend(ctx_for(farm, ssh_config=str(farm.ssh_config), ssh_known_hosts=str(wrong)))
    try:
        with pytest.raises(ConnectError) as info:
            await backend.execute(request(node("true", engine=key_url(farm, server))), Lines())
    finally:
        await backend.close()
    message = str(info.value)
    assert "\n" not in message
    assert f"127.0.0.1:{server.port}" in message and "host key" in message


async def test_unknown_host_key_is_refused_by_default(farm: Farm, tmp_path, monkeypatch) -> None:
    server = _key_server(farm)
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    monkeypatch.delenv("WORLDTREE_SSH_INSECURE", raising=False)
    backend = SshBackend(ctx_for(farm, ssh_config=str(farm.ssh_config), ssh_known_hosts=str(empty)))
    try:
        with pytest.raises(ConnectError, match="host key"):
            await backend.execute(request(node("true", engine=key_url(farm, server))), Lines())
    finally:
        await backend.close()
    # explicit opt-out
    monkeypatch.setenv("WORLDTREE_SSH_INSECURE", "1")
    backend = SshBackend(ctx_for(farm, ssh_config=str(farm.ssh_config), ssh_known_hosts=str(empty)))
    try:
        assert await backend.execute(request(node("true", engine=key_url(farm, server))), Lines()) == 0
    finally:
        await backend.close()


async def test_connection_errors_are_one_line_and_name_the_host(farm: Farm) -> None:
    server = _password_server(farm)
    secret = "Wrong-Pa55word-xyz"
    backend = SshBackend(ctx_for(farm, ssh_connect_timeout=2))
    try:
        url = f"ssh://{farm.user}:${{PW}}@127.0.0.1:{server.port}"
        with pytest.raises(ConnectError) as auth:
            await backend.execute(request(node("true", engine=url), {"PW": secret}), Lines())
        with pytest.raises(ConnectError) as refused:
            await backend.execute(request(node("true", engine="ssh://u:p4ss@127.0.0.1:1")), Lines())
        with pytest.raises(ConnectError) as dns:
            await backend.execute(request(node("true", engine="ssh://u@no-such-host.invalid:22")), Lines())
        with pytest.raises(BackendError) as missing:
            await backend.execute(request(node("true", engine=url)), Lines())
    finally:
        await backend.close()
    assert "authentication failed" in str(auth.value) and f"127.0.0.1:{server.port}" in str(auth.value)
    assert "refused" in str(refused.value) and "p4ss" not in str(refused.value)
    assert "no-such-host.invalid" in str(dns.value)
    assert "${PW}" in str(missing.value) and "not set" in str(missing.value)
    for exc in (auth.value, refused.value, dns.value, missing.value):
        assert secret not in str(exc) and secret not in repr(exc) and "\n" not in str(exc)


async def test_upload_and_download(farm: Farm, tmp_path) -> None:
    from worldtree.connectors.ssh.target import parse_engine_url

    server = _key_server(farm)
    backend = SshBackend(ctx_for(farm, ssh_config=str(farm.ssh_config)))
    src = tmp_path / "a.txt"
    src.write_text("payload\n")
    target = parse_engine_url(key_url(farm, server))
    try:
        await backend.upload(target, src, "/tmp/wt-upload-test.txt", mode=0o600)
        await backend.download(target, "/tmp/wt-upload-test.txt", tmp_path / "b.txt")
        out = Lines()
        await backend.execute(request(node("stat -c %a /tmp/wt-upload-test.txt; rm /tmp/wt-upload-test.txt",
                                           engine=key_url(farm, server))), out)
    finally:
        await backend.close()
    assert (tmp_path / "b.txt").read_text() == "payload\n"
    assert out.out() == ["600"]


async def test_inventory_host_from_run_config(farm: Farm, tmp_path) -> None:
    """A node with only ``target.host`` reads the inventory named in the run's config."""
    from sshd_farm import inventory_yaml

    inv = tmp_path / "inventory.yaml"
    inv.write_text(inventory_yaml(farm, names=["h1", "h2"]))
    backend = SshBackend(ctx_for(farm, inventory=str(inv)))
    out = Lines()
    try:
        assert await backend.execute(request(node('echo "$(whoami)"', host="h2")), out) == 0
        with pytest.raises(BackendError, match="'nope' is not in inventory"):
            await backend.execute(request(node("true", host="nope")), out)
    finally:
        await backend.close()
    assert out.out() == [farm.user]


async def test_prewarm_connects_every_graph_host_once(farm: Farm) -> None:
    servers = [s for s in farm.servers if not s.password_auth]
    nodes = [node("true", engine=key_url(farm, s), node_id=f"j@{s.name}/x") for s in servers]
    before = {s.name: s.accepted() for s in servers}
    backend = SshBackend(ctx_for(farm, nodes=nodes, ssh_config=str(farm.ssh_config)))
    try:
        assert await backend.execute(request(nodes[0]), Lines()) == 0
        await _wait_for(lambda: backend.pool.opened == len(servers))
        for n in nodes:
            assert await backend.execute(request(n), Lines()) == 0
    finally:
        await backend.close()
    await asyncio.sleep(0.2)
    assert {s.name: s.accepted() - before[s.name] for s in servers} == {s.name: 1 for s in servers}
