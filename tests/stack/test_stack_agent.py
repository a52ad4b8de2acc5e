"""`worldtree stack agent` ticks against PostgreSQL: several agents, one lease, drift, memory in the store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from worldtree.stack.agent import parse_interval
from worldtree.store import open_store
from worldtree.store.server_data import engine_of
from worldtree.store.stacks import StackRows
from worldtree.testing.stores import pg_unavailable_reason, store_url

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "stack"
PLUGIN = """
import json, os, sys
if sys.argv[1] == "info":
    print(json.dumps({"name": os.path.basename(sys.argv[0])}))
    sys.exit(0)
req = json.load(sys.stdin)
with open(os.environ["HOME"] + "/applied.log", "a") as log:
    log.write(os.path.basename(sys.argv[0]) + " " + req["phase"] + "\\n")
print(json.dumps({"apiVersion": "stackflow.plugin/v1", "kind": "Response", "ok": True,
                  "changes": [{"resource": req["phase"], "action": "apply"}]}))
"""


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[str]:
    reason = pg_unavailable_reason()
    if reason:
        pytest.skip(f"!!! PostgreSQL tests skipped: {reason}")
    with store_url("postgres", tmp_path) as url:
        yield url


def _setup(tmp_path: Path) -> Path:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    for name in ("dns-cloudflare", "iac-gcp", "deploy-vercel", "observe-prometheus"):
        path = plugins / f"stackflow-plugin-{name}"
        path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(PLUGIN))
        path.chmod(0o755)
    stack = tmp_path / "s.yaml"
    stack.write_text((EXAMPLES / "vercel-www.yaml").read_text())
    return stack


def _agent(tmp_path: Path, store: str, name: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "worldtree.cli.main", "--store", store, "stack", "agent", "--config", "s.yaml",
            "--name", name, *extra]


def _env(tmp_path: Path, approved: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORLDTREE_", "GITHUB_"))}
    env["HOME"] = str(tmp_path)  # the plugins' log of what they applied (HOME is in their allowlist)
    if approved:
        env["WORLDTREE_APPLY_APPROVED"] = "1"
    return env


def _once(tmp_path: Path, store: str, name: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(_agent(tmp_path, store, name, "--once", *extra), cwd=tmp_path, env=_env(tmp_path, True),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen[str]) -> dict[str, object]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    result: dict[str, object] = json.loads(out)
    return result


def test_two_agents_one_lease_one_apply(tmp_path: Path, pg: str) -> None:
    _setup(tmp_path)
    rows_store = open_store(pg)
    rows = StackRows(engine_of(rows_store))
    try:
        # agent A ticks every minute and leads, but may not apply
        leader = subprocess.Popen(_agent(tmp_path, pg, "A", "--interval", "60s"), cwd=tmp_path,
                                  env=_env(tmp_path, True), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True)
        try:
            for _ in range(300):
                if rows.holder("agent/svc-plus/") == "A" and "last_tick" in rows.recall("svc-plus", ""):
                    break
                assert leader.poll() is None, leader.stderr.read() if leader.stderr else ""
                time.sleep(0.1)
            else:
                pytest.fail("agent A did not tick within 30 s")
            first = rows.recall("svc-plus", "")
            assert first["last_tick"]["not_applied"] == "this agent was not started with --dangerously-allow-apply"
            assert set(first["drift"]) == {"dns", "iac", "deploy", "observe"}

            # B may apply, sees the drift, but A holds the lease: nothing is applied
            b = _result(_once(tmp_path, pg, "B", "--dangerously-allow-apply"))
            assert b["drift"] and b["applied"] is False
            assert b["not_applied"] == "A holds the lease; only the leader applies"
            assert not (tmp_path / "applied.log").exists()
        finally:
            leader.send_signal(signal.SIGTERM)
            leader.wait(timeout=30)
        assert rows.holder("agent/svc-plus/") is None  # A let go when it stopped

        # B and C at once, both allowed and approved: exactly one applies
        both = [_once(tmp_path, pg, name, "--dangerously-allow-apply") for name in ("B", "C")]
        results = [_result(proc) for proc in both]
        assert sorted(bool(r["applied"]) for r in results) == [False, True]
        applied = (tmp_path / "applied.log").read_text().splitlines()
        assert sorted(applied) == sorted(["stackflow-plugin-dns-cloudflare dns-apply",
                                          "stackflow-plugin-deploy-vercel deploy-apply",
                                          "stackflow-plugin-observe-prometheus observe-apply"])

        # the next tick finds no drift; memory and runs are in the store
        again = _result(_once(tmp_path, pg, "C", "--dangerously-allow-apply"))
        assert again["drift"] == {} and again["applied"] is False
        memory = rows.recall("svc-plus", "")
        assert memory["drift"] == {} and memory["last_apply"]["ok"] is True
        names = [r.name for r in rows_store.list_runs(50)]
        assert names.count("stack svc-plus agent tick") == 5
        assert names.count("stack svc-plus apply all") == 1
    finally:
        rows_store.close()


def test_a_broken_stack_is_a_recorded_tick_not_a_crash(tmp_path: Path) -> None:
    _setup(tmp_path)
    (tmp_path / "s.yaml").write_text("kind: StackFlow\nmetadata: {name: x}\nglobal: {domain: a.b}\ntargets: []\n")
    store = f"sqlite:///{tmp_path / 's.db'}"
    proc = subprocess.run(_agent(tmp_path, store, "A", "--once"), cwd=tmp_path, env=_env(tmp_path, False),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    result = json.loads(proc.stdout)
    assert result["ok"] is False and "s.yaml:3:" in result["error"]
    opened = open_store(store)
    try:
        (run,) = opened.list_runs()
        assert run.name == "stack s agent tick" and run.state == "failed"
    finally:
        opened.close()


def test_plan_directories_are_one_safe_segment() -> None:
    from worldtree.stack.agent import _dir_name

    assert _dir_name("svc-plus", "") == "svc-plus" and _dir_name("svc-plus", "prod") == "svc-plus.prod"
    for name in ("../../etc", "a/b", ".hidden"):
        made = _dir_name(name, "")
        assert "/" not in made and not made.startswith(".") and made != _dir_name(name + "x", "")


def test_interval() -> None:
    assert [parse_interval(t) for t in ("90", "30s", "10m", "1h")] == [90, 30, 600, 3600]
    for bad in ("", "0", "ten", "5x"):
        with pytest.raises(ValueError, match="--interval"):
            parse_interval(bad)
