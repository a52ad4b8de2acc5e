"""End to end: `worldtree run` with SSH steps, inventory fan-out, and secrets kept out of
everything worldtree writes (console, JSON events, the SQLite store)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sshd_farm import Farm, inventory_yaml


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "WORLDTREE_STORE": f"sqlite:///{cwd / 'store.db'}", **env}
    return subprocess.run([sys.executable, "-m", "worldtree.cli.main", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=120, check=False)


def _everything_written(cwd: Path, result: subprocess.CompletedProcess[str]) -> bytes:
    blobs = [result.stdout.encode(), result.stderr.encode()]
    for path in cwd.rglob("*"):
        if path.is_file() and path.suffix != ".yaml":
            blobs.append(path.read_bytes())
    return b"\n".join(blobs)


@pytest.fixture
def project(farm: Farm, tmp_path: Path) -> Path:
    key_servers = [s.name for s in farm.servers if not s.password_auth]
    (tmp_path / "inventory.yaml").write_text(inventory_yaml(farm, names=key_servers))
    return tmp_path


def test_fanout_pipeline_with_password_secret(farm: Farm, project: Path) -> None:
    password_server = next(s for s in farm.servers if s.password_auth)
    (project / "pipeline.yaml").write_text(f"""\
name: fleet
inventory: inventory.yaml
jobs:
  deploy:
    hosts: [farm]
    steps:
      - {{name: who, command: 'echo "$WORLDTREE_HOST on $(hostname) as $(whoami)"'}}
      - {{name: two, command: 'echo second'}}
  secret:
    needs: [deploy]
    secrets: [SSH_PW]
    engine: ssh://{farm.user}:${{SSH_PW}}@127.0.0.1:{password_server.port}
    steps:
      - {{name: use, command: 'echo "pw=$SSH_PW"; whoami'}}
""")
    result = _run(["run", "pipeline.yaml", "--json", "-j", "10"], project,
                  {"SSH_PW": farm.password, "WORLDTREE_SSH_KNOWN_HOSTS": str(farm.known_hosts)})
    assert result.returncode == 0, result.stdout + result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    text = result.stdout
    for server in farm.servers:
        if not server.password_auth:
            assert f"{server.name} on " in text
            assert f"deploy@{server.name}/two" in text
    assert farm.user in text and events
    written = _everything_written(project, result)
    assert farm.password.encode() not in written


def test_unreachable_host_fails_only_its_node(farm: Farm, project: Path) -> None:
    inv = inventory_yaml(farm, names=["h1"]) .replace("hosts:\n", "hosts:\n  dead: {address: 127.0.0.1, port: 1}\n")
    inv = inv.replace("farm: [h1]", "farm: [h1, dead]")
    (project / "inventory.yaml").write_text(inv)
    (project / "pipeline.yaml").write_text("name: f\ninventory: inventory.yaml\non_failure: continue\n"
                                           "jobs:\n  ping:\n    hosts: farm\n    steps: [echo pong]\n")
    result = _run(["run", "pipeline.yaml"], project, {})
    assert result.returncode == 1
    out = result.stdout + result.stderr
    assert "ping@h1/step-1" in out and "pong" in out
    assert "ssh dead" in out and "connection refused" in out


def test_step_timeout_kills_the_remote_process(farm: Farm, project: Path) -> None:
    (project / "pipeline.yaml").write_text("name: t\ninventory: inventory.yaml\njobs:\n  slow:\n    hosts: h1\n"
                                           "    steps:\n      - {command: 'sleep 98799; echo late', timeout: 1}\n")
    result = _run(["run", "pipeline.yaml"], project, {})
    assert result.returncode == 1
    assert "late" not in result.stdout
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert "sleep 98799" not in ps


def test_literal_password_in_the_file_is_not_stored(farm: Farm, project: Path) -> None:
    server = next(s for s in farm.servers if s.password_auth)
    (project / "pipeline.yaml").write_text(
        f"name: lit\njobs:\n  a:\n    engine: ssh://{farm.user}:{farm.password}@127.0.0.1:{server.port}\n"
        "    steps: [whoami]\n")
    result = _run(["run", "pipeline.yaml"], project, {"WORLDTREE_SSH_KNOWN_HOSTS": str(farm.known_hosts)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert farm.password.encode() not in _everything_written(project, result)


def test_facts_command_gathers_every_host_of_a_group(farm: Farm, project: Path) -> None:
    result = _run(["facts", "farm", "-i", "inventory.yaml", "--json"], project, {})
    assert result.returncode == 0, result.stdout + result.stderr
    facts = json.loads(result.stdout)
    assert len(facts) >= 2
    for values in facts.values():
        assert values["os"].lower() == "linux" and int(values["cpus"]) >= 1 and values["hostname"]
    unknown = _run(["facts", "nope", "-i", "inventory.yaml"], project, {})
    assert unknown.returncode == 2 and "nope" in unknown.stderr
