"""The reference DNS plugin against a real PowerDNS (Debian's pdns-server + sqlite3 backend) on loopback:
plan → apply → dig answers → a second apply changes nothing; the API key never shows."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

Cli = Callable[..., subprocess.CompletedProcess[str]]
HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parents[1] / "examples" / "stack"
SCHEMA = Path("/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql")
API_KEY = "pdns-key-6b1f0c2e9d"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not (shutil.which("pdns_server") or Path("/usr/sbin/pdns_server").exists()) or not shutil.which("dig")
    or not SCHEMA.exists(), reason="needs pdns-server, pdns-backend-sqlite3 and dig (installed by .ci/run)")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def powerdns(tmp_path: Path) -> Iterator[tuple[int, str]]:
    """(DNS port, API URL) of a PowerDNS started for this test, stopped after it."""
    db = tmp_path / "pdns.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(SCHEMA.read_text())
    dns_port, api_port = _free_port(), _free_port()
    binary = shutil.which("pdns_server") or "/usr/sbin/pdns_server"
    proc = subprocess.Popen([binary, "--no-config", f"--config-dir={tmp_path}", f"--socket-dir={tmp_path}",
                             "--daemon=no", "--guardian=no", "--disable-syslog", "--security-poll-suffix=",
                             "--local-address=127.0.0.1", f"--local-port={dns_port}", "--launch=gsqlite3",
                             f"--gsqlite3-database={db}", "--api=yes", f"--api-key={API_KEY}", "--webserver=yes",
                             "--webserver-address=127.0.0.1", f"--webserver-port={api_port}",
                             "--webserver-allow-from=127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{api_port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{url}/api/v1/servers", headers={"X-API-Key": API_KEY}, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, "pdns_server exited at start"
            time.sleep(0.1)
        else:
            pytest.fail("PowerDNS API did not come up in 10 s")
        yield dns_port, url
    finally:
        proc.kill()
        proc.wait()


def _dig(port: int, name: str, rtype: str) -> list[str]:
    out = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), name, rtype, "+short", "+time=2", "+tries=2"],
                         capture_output=True, text=True, timeout=15, check=True).stdout
    return out.split()


def test_plan_apply_dig_then_no_changes(cli: Cli, tmp_path: Path, powerdns: tuple[int, str]) -> None:
    port, url = powerdns
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    wrapper = plugins / "stackflow-plugin-dns-powerdns"
    wrapper.write_text(f"#!{sys.executable}\nfrom worldtree.stack.powerdns import main\nmain()\n")
    wrapper.chmod(0o755)
    stack = tmp_path / "svc-plus.yaml"
    stack.write_text((EXAMPLES / "svc-plus.yaml").read_text())
    env = {"POWERDNS_API_URL": url, "POWERDNS_API_KEY": API_KEY}
    assert _dig(port, "www.svc.plus", "CNAME") == []

    assert cli("plan", "dns", str(stack), "--env", "dev", "--out", "p").returncode == 0
    first = cli("apply", "dns", str(stack), "--env", "dev", "--plan", "p", "--approve", env=env)
    assert first.returncode == 0, first.stderr
    changed = {c["resource"]: c["action"] for c in json.loads(first.stdout)["dns"]["changes"]}
    assert changed == {"svc.plus.": "create", "www.svc.plus. CNAME": "create", "docs.svc.plus. CNAME": "create"}
    assert "api.svc.plus A: valueFrom endpoints.public_ipv4 has no value yet" in first.stderr
    assert _dig(port, "www.svc.plus", "CNAME") == ["cname.vercel-dns.com."]
    assert _dig(port, "docs.svc.plus", "CNAME") == ["ghs.googlehosted.com."]

    assert cli("plan", "dns", str(stack), "--env", "dev", "--out", "p").returncode == 0
    second = cli("apply", "dns", str(stack), "--env", "dev", "--plan", "p", "--approve", env=env)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["dns"]["changes"] == []
    assert "[plugin] svc.plus.: no changes" in second.stderr.splitlines()

    stack.write_text(stack.read_text().replace("ttl: 3600", "ttl: 600"))
    assert cli("plan", "dns", str(stack), "--env", "dev", "--out", "p").returncode == 0
    third = cli("apply", "dns", str(stack), "--env", "dev", "--plan", "p", "--approve", env=env)
    assert [(c["resource"], c["action"], c["before"]["ttl"], c["after"]["ttl"])
            for c in json.loads(third.stdout)["dns"]["changes"]] == [("docs.svc.plus. CNAME", "update", 3600, 600)]

    shown = first.stdout + first.stderr + second.stdout + second.stderr + third.stdout + third.stderr
    stored = "".join(p.read_text() for p in (tmp_path / "p").iterdir() if p.is_file())
    assert API_KEY not in shown + stored
    assert os.environ.get("POWERDNS_API_KEY") != API_KEY  # the key came only from the test's env
