"""A stack apply is a run in the store (SQLite and PostgreSQL): node states, masked plugin logs, skips."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from worldtree.plugins import PluginError
from worldtree.stack import load_stack
from worldtree.stack.apply import ApplyOptions, apply_plans
from worldtree.stack.service import write_plans
from worldtree.store import open_store
from worldtree.testing.stores import pg_unavailable_reason, store_url

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "stack"
SECRET = "rec-secret-9f8e7d6c5b"

PLUGIN = """
import json, sys
if sys.argv[1] == "info":
    print(json.dumps({{"credentials": ["REC_TOKEN"]}}))
    sys.exit(0)
req = json.load(sys.stdin)
print("token is " + __import__("os").environ["REC_TOKEN"], file=sys.stderr)
if {code}:
    sys.exit({code})
print(json.dumps({{"apiVersion": "stackflow.plugin/v1", "kind": "Response", "ok": True,
                  "changes": [{{"resource": req["phase"], "action": "apply"}}]}}))
"""


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "postgres":
        reason = pg_unavailable_reason()
        if reason:
            pytest.skip(f"!!! PostgreSQL tests skipped: {reason}")
    with store_url(request.param, tmp_path) as url:
        opened = open_store(url)
        try:
            yield opened
        finally:
            opened.close()


def _plugins(tmp_path: Path, failing: str = "") -> Path:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    for name in ("dns-cloudflare", "iac-gcp", "deploy-vercel", "deploy-vhost", "deploy-cloud-run",
                 "observe-prometheus"):
        path = plugins / f"stackflow-plugin-{name}"
        path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(PLUGIN.format(code=3 if name == failing else 0)))
        path.chmod(0o755)
    return plugins


def _apply(tmp_path: Path, store: Any, plugins: Path) -> dict[str, Any]:
    loaded = load_stack(EXAMPLES / "svc-plus.yaml")
    write_plans(loaded, "all", tmp_path / "p")
    options = ApplyOptions(approved=True, plugins_dir=plugins, store=store, timeout=30,
                           environ={"PATH": os.environ["PATH"], "REC_TOKEN": SECRET})
    return apply_plans(loaded, "all", tmp_path / "p", options)


def test_apply_is_a_succeeded_run_with_a_node_per_plugin_and_masked_logs(tmp_path: Path, store: Any) -> None:
    results = _apply(tmp_path, store, _plugins(tmp_path))
    assert all(r["ok"] for r in results.values())
    (run,) = store.list_runs()
    assert run.name == "stack svc-plus apply all" and run.state == "succeeded"
    states = {n.node: n.state for n in store.node_records(run.run_id)}
    assert states == {"dns/stackflow-plugin-dns-cloudflare": "succeeded", "iac/stackflow-plugin-iac-gcp": "succeeded",
                      "deploy/stackflow-plugin-deploy-cloud-run": "succeeded",
                      "deploy/stackflow-plugin-deploy-vercel": "succeeded",
                      "deploy/stackflow-plugin-deploy-vhost": "succeeded",
                      "observe/stackflow-plugin-observe-prometheus": "succeeded"}
    lines = store.logs(run.run_id, node="dns")
    assert [line.line for line in lines] == ["token is ***"]
    assert all(SECRET not in line.line for line in store.logs(run.run_id))


def test_failed_plugin_fails_the_run_and_later_phases_are_skipped(tmp_path: Path, store: Any) -> None:
    with pytest.raises(PluginError, match="stackflow-plugin-iac-gcp apply exited with code 3"):
        _apply(tmp_path, store, _plugins(tmp_path, failing="iac-gcp"))
    (run,) = store.list_runs()
    assert run.state == "failed"
    nodes = {n.node: n for n in store.node_records(run.run_id)}
    assert nodes["dns/stackflow-plugin-dns-cloudflare"].state == "succeeded"
    assert nodes["iac/stackflow-plugin-iac-gcp"].state == "failed"
    assert "exited with code 3" in (nodes["iac/stackflow-plugin-iac-gcp"].error or "")
    assert nodes["deploy/stackflow-plugin-deploy-vhost"].state == "skipped"
    assert nodes["observe/stackflow-plugin-observe-prometheus"].reason == "upstream"
