"""Stack state in the run store (SQLite and PostgreSQL): plans digest against it, applies record it,
a plan made before another applier's apply is stale, a phase's lease keeps a second applier out."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from worldtree.errors import UsageError
from worldtree.stack import load_stack
from worldtree.stack.apply import ApplyOptions, apply_plans
from worldtree.stack.service import write_plans
from worldtree.stack.state import StackState, lease_key
from worldtree.store import open_store
from worldtree.testing.stores import pg_unavailable_reason, store_url

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "stack"
PLUGIN = """
import json, sys
if sys.argv[1] == "info":
    print(json.dumps({"name": "fake"}))
    sys.exit(0)
req = json.load(sys.stdin)
have = req["state"].get("resources", {}).get("dns", {})
changes = [{"resource": r["name"] + "/" + r["type"], "action": "create", "after": r.get("value")}
           for r in req["plan"]["records"] if have.get(r["name"] + "/" + r["type"]) != r.get("value")]
print(json.dumps({"apiVersion": "stackflow.plugin/v1", "kind": "Response", "ok": True, "changes": changes}))
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


def _plugins(tmp_path: Path) -> Path:
    plugins = tmp_path / "plugins"
    plugins.mkdir(exist_ok=True)
    path = plugins / "stackflow-plugin-dns-cloudflare"
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(PLUGIN))
    path.chmod(0o755)
    return plugins


def _options(tmp_path: Path, store: Any) -> ApplyOptions:
    return ApplyOptions(approved=True, plugins_dir=_plugins(tmp_path), store=store, timeout=30,
                        environ={"PATH": os.environ["PATH"]})


def test_state_lives_in_the_store_and_a_plan_from_before_another_apply_is_stale(tmp_path: Path,
                                                                                store: Any) -> None:
    loaded = load_stack(EXAMPLES / "vercel-www.yaml")
    # two CI jobs (two plan directories, one shared store) plan the same stack
    first, second = tmp_path / "job1", tmp_path / "job2"
    write_plans(loaded, "dns", first, store=store)
    write_plans(loaded, "dns", second, store=store)
    assert StackState(store).drift(loaded, {"dns": json.loads((first / "stackflow.dns-plan.json").read_text())}) \
        == {"dns": "never applied"}

    result = apply_plans(loaded, "dns", first, _options(tmp_path, store))
    assert [c["resource"] for c in result["dns"]["changes"]] == ["www/CNAME"]
    state = StackState(store).load(loaded)
    assert state == {"resources": {"dns": {"www/CNAME": "cname.vercel-dns.com."}}}
    (row,) = StackState(store).rows.phases("svc-plus", "")
    assert row["phase"] == "dns" and row["run_id"] == store.list_runs()[0].run_id

    # job 2's plan was made before job 1 applied: refused, though its own directory has no state file
    assert not (second / "stackflow.state.json").exists()
    with pytest.raises(UsageError, match="plan was made for a different stack or state; run plan again"):
        apply_plans(loaded, "dns", second, _options(tmp_path, store))

    # planned again against the store's state: applies, and the plugin (given that state) changes nothing
    plans = write_plans(loaded, "dns", second, store=store)
    assert StackState(store).drift(loaded, plans) == {}
    again = apply_plans(loaded, "dns", second, _options(tmp_path, store))
    assert again["dns"]["changes"] == []

    # the stack moved: drift until applied
    moved = load_stack(EXAMPLES / "svc-plus.yaml")
    assert moved.stack.name == loaded.stack.name
    assert StackState(store).drift(moved, write_plans(moved, "dns", tmp_path / "job3", store=store)) == {
        "dns": "the stack changed since the last apply"}


def test_a_held_phase_lease_refuses_a_second_applier(tmp_path: Path, store: Any) -> None:
    loaded = load_stack(EXAMPLES / "vercel-www.yaml")
    write_plans(loaded, "dns", tmp_path / "p", store=store)
    rows = StackState(store).rows
    token = rows.acquire(lease_key(loaded, "dns"), "other-host:42", 60)
    assert token is not None
    assert rows.acquire(lease_key(loaded, "dns"), "third:1", 60) is None
    with pytest.raises(UsageError, match=r"phase dns is running \(other-host:42\)"):
        apply_plans(loaded, "dns", tmp_path / "p", _options(tmp_path, store))
    assert StackState(store).load(loaded) == {}
    rows.release(lease_key(loaded, "dns"), token)
    assert apply_plans(loaded, "dns", tmp_path / "p", _options(tmp_path, store))["dns"]["ok"] is True
    assert rows.holder(lease_key(loaded, "dns")) is None  # released after the apply


def test_the_lease_of_an_applier_killed_on_this_host_is_taken_over(tmp_path: Path, store: Any) -> None:
    import socket
    import subprocess

    loaded = load_stack(EXAMPLES / "vercel-www.yaml")
    write_plans(loaded, "dns", tmp_path / "p", store=store)
    gone = subprocess.Popen(["true"])
    gone.wait()
    rows = StackState(store).rows
    assert rows.acquire(lease_key(loaded, "dns"), f"{socket.gethostname()}:{gone.pid}", 3600) is not None
    assert apply_plans(loaded, "dns", tmp_path / "p", _options(tmp_path, store))["dns"]["ok"] is True
    # one on another host (or alive here) is not
    write_plans(loaded, "dns", tmp_path / "p", store=store)
    assert rows.acquire(lease_key(loaded, "dns"), "elsewhere:1", 3600) is not None
    with pytest.raises(UsageError, match=r"\(elsewhere:1\)"):
        apply_plans(loaded, "dns", tmp_path / "p", _options(tmp_path, store))


def test_two_applies_in_one_process_do_not_share_a_lease(tmp_path: Path, store: Any) -> None:
    """The lease's holder was ``host:pid``, and a holder taking its own lease renews it: a second
    apply in the same process (two MCP calls) got the phase too, then released the first one's."""
    loaded = load_stack(EXAMPLES / "vercel-www.yaml")
    state = StackState(store)
    with state.leases(loaded, ("dns",)):
        held = state.rows.holder(lease_key(loaded, "dns"))
        with pytest.raises(UsageError, match=r"phase dns is running"), state.leases(loaded, ("dns",)):
            pass
        assert state.rows.holder(lease_key(loaded, "dns")) == held  # still the first apply's
    assert state.rows.holder(lease_key(loaded, "dns")) is None


SLOW_PLUGIN = """
import json, os, sys, time
if sys.argv[1] == "info":
    print(json.dumps({"name": "fake", "env": ["MARKS"]}))
    sys.exit(0)
json.load(sys.stdin)
marks = os.environ["MARKS"]
with open(marks, "a") as fh:
    fh.write(f"start {os.getpid()}\\n")
time.sleep(20)
with open(marks, "a") as fh:
    fh.write("done\\n")
print(json.dumps({"apiVersion": "stackflow.plugin/v1", "kind": "Response", "ok": True, "changes": []}))
"""

APPLIER = """
import os, sys
from pathlib import Path
from worldtree.stack import load_stack
from worldtree.stack.apply import ApplyOptions, apply_plans
from worldtree.store import open_store
loaded = load_stack(sys.argv[1])
apply_plans(loaded, "dns", Path(sys.argv[2]), ApplyOptions(
    approved=True, plugins_dir=Path(sys.argv[3]), store=open_store(sys.argv[4]), timeout=60,
    environ={"PATH": os.environ["PATH"], "MARKS": sys.argv[5]}))
"""


@pytest.mark.slow
def test_a_plugin_dies_with_an_applier_killed_9(tmp_path: Path) -> None:
    """Plugins run in sessions of their own: after kill -9 of the applier its plugin went on applying,
    while the next applier (taking over the dead one's lease) started a second one beside it."""
    import signal
    import subprocess
    import time

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    plugin = plugins / "stackflow-plugin-dns-cloudflare"
    plugin.write_text(f"#!{sys.executable}\n" + textwrap.dedent(SLOW_PLUGIN))
    plugin.chmod(0o755)
    marks = tmp_path / "marks"
    url = f"sqlite:///{tmp_path / 's.db'}"
    opened = open_store(url)
    try:
        write_plans(load_stack(EXAMPLES / "vercel-www.yaml"), "dns", tmp_path / "p", store=opened)
    finally:
        opened.close()
    applier = subprocess.Popen([sys.executable, "-c", APPLIER, str(EXAMPLES / "vercel-www.yaml"), str(tmp_path / "p"),
                                str(plugins), url, str(marks)])
    deadline = time.monotonic() + 30
    while not (marks.exists() and marks.read_text().startswith("start")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marks.exists(), "the plugin never started"
    pid = int(marks.read_text().split()[1])
    applier.send_signal(signal.SIGKILL)
    applier.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        raise AssertionError("the plugin outlived its applier")
    assert "done" not in marks.read_text()
    # the dead applier's lease (held as host:pid#nonce) is taken over by the next one on this host
    opened = open_store(url)
    try:
        loaded = load_stack(EXAMPLES / "vercel-www.yaml")
        assert "#" in (StackState(opened).rows.holder(lease_key(loaded, "dns")) or "")
        _plugins(tmp_path)  # the quick plugin in place of the slow one
        assert apply_plans(loaded, "dns", tmp_path / "p", _options(tmp_path, opened))["dns"]["ok"] is True
    finally:
        opened.close()
