"""Engine URLs and inventory hosts -> SSH endpoints (pure)."""

from __future__ import annotations

import base64

import pytest

from worldtree.connectors.ssh.pool import SshPool
from worldtree.connectors.ssh.target import parse_engine_url, redact_engine_url
from worldtree.errors import BackendError
from worldtree.ops.inventory import HostSpec, Inventory

KEY = b"-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n"


def test_password_form() -> None:
    t = parse_engine_url("ssh://deploy:s3cr%40t@example.com:2222")
    assert (t.address, t.port, t.user, t.password, t.private_key) == ("example.com", 2222, "deploy", "s3cr@t", None)
    assert t.label == "deploy@example.com:2222"
    assert "s3cr" not in repr(t)


def test_password_with_reserved_characters_from_env() -> None:
    t = parse_engine_url("ssh://root:${PW}@10.0.0.1:22", {"PW": "a@b:c/d?e"})
    assert t.password == "a@b:c/d?e" and t.address == "10.0.0.1" and t.port == 22


def test_private_key_form() -> None:
    b64 = base64.b64encode(KEY).decode()
    t = parse_engine_url(f"ssh://private_key:{b64}@host:22?user=ops")
    assert t.private_key == KEY and t.user == "ops" and t.password is None
    assert b64 not in repr(t) and b64 not in t.label
    t = parse_engine_url(f"ssh://private_key:{b64}@host")
    assert t.user is None and t.port is None  # ~/.ssh/config's User, else the local user


def test_private_key_from_secret_and_url_safe_alphabet() -> None:
    b64 = base64.urlsafe_b64encode(KEY + b"\xfb\xff").decode().rstrip("=")
    t = parse_engine_url("ssh://private_key:${KEY}@h", {"KEY": b64})
    assert t.private_key is not None and t.private_key.startswith(KEY)


def test_plain_forms() -> None:
    t = parse_engine_url("ssh://web1")
    assert (t.address, t.port, t.user, t.password) == ("web1", None, None, None)
    t = parse_engine_url("ssh://me@[::1]:2200")
    assert (t.address, t.port, t.user) == ("::1", 2200, "me")


@pytest.mark.parametrize(("url", "message"), [
    ("ssh://u:p@h:99999", "port"),
    ("ssh://u:p@h:x", "port"),
    ("ssh://u@", "no host"),
    ("ssh://private_key:@h", "base64"),
    ("ssh://private_key:bm90IGEga2V5@h", "not base64 of a private key"),
    ("ssh://u:p@h?user=x", "only for the `private_key:` form"),
    ("ssh://u@h?colour=red", "unknown query parameter"),
    ("ssh://u:${MISSING}@h", "${MISSING}"),
    ("http://h", "ssh://"),
])
def test_bad_urls_are_clear_and_never_echo_the_password(url: str, message: str) -> None:
    with pytest.raises(BackendError, match=None) as info:
        parse_engine_url(url)
    assert message in str(info.value)
    assert ":p@" not in str(info.value)


def test_redact() -> None:
    assert redact_engine_url("ssh://u:hunter2@h:22") == "ssh://u:***@h:22"
    assert redact_engine_url("ssh://u:${PW}@h") == "ssh://u:${PW}@h"
    assert redact_engine_url("ssh://private_key:QUJD@h?user=x") == "ssh://private_key:***@h?user=x"
    assert redact_engine_url("ssh://u@h") == "ssh://u@h"
    assert redact_engine_url("docker") == "docker"


def test_literal_credentials() -> None:
    from worldtree.connectors.ssh.target import literal_credentials

    assert literal_credentials("ssh://u:p%40ss@h") == ["p%40ss", "p@ss"]
    assert literal_credentials("ssh://u:${PW}@h") == [] and literal_credentials("ssh://u@h") == []
    b64 = base64.b64encode(KEY).decode()
    assert literal_credentials(f"ssh://private_key:{b64}@h") == [b64, KEY.decode()]


def test_inventory_host_round_trips_through_its_url() -> None:
    spec = HostSpec(address="10.1.2.3", port=2201, user="ops", key_file="~/.ssh/id_ops", password="${OPS_PW}",
                    host_key_checking=False, known_hosts="/etc/kh", connect_timeout=3)
    url = Inventory(hosts={"web1": spec, "db": HostSpec()}).engine_url("web1")
    assert "${OPS_PW}" in url
    t = parse_engine_url(url, {"OPS_PW": "x y"})
    assert (t.address, t.port, t.user, t.password, t.key_file) == ("10.1.2.3", 2201, "ops", "x y", "~/.ssh/id_ops")
    assert (t.host_key_checking, t.known_hosts, t.connect_timeout) == (False, "/etc/kh", 3.0)
    assert parse_engine_url(Inventory(hosts={"db": HostSpec()}).engine_url("db")).address == "db"


def test_connect_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLDTREE_SSH_INSECURE", raising=False)
    pool = SshPool({"ssh_known_hosts": "/k", "ssh_connect_timeout": 4})
    opts = pool.options(parse_engine_url("ssh://u:pw@h:2"))
    assert opts["known_hosts"] == "/k" and opts["connect_timeout"] == 4
    assert opts["client_keys"] is None and opts["password"] == "pw"  # explicit credentials only
    opts = pool.options(parse_engine_url("ssh://u@h"))
    assert "client_keys" not in opts and "password" not in opts  # ssh's defaults: config, agent, keys
    assert pool.options(parse_engine_url("ssh://h?host_key_checking=false"))["known_hosts"] is None
    monkeypatch.setenv("WORLDTREE_SSH_INSECURE", "1")
    assert SshPool().options(parse_engine_url("ssh://h"))["known_hosts"] is None
    monkeypatch.delenv("WORLDTREE_SSH_INSECURE")
    assert "known_hosts" not in SshPool().options(parse_engine_url("ssh://h"))  # checking on, ssh's files
