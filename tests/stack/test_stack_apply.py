"""apply: approval gate, stale plans, exec plugins (spec v1) written here in Python, run for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from worldtree.plugins import PluginError, find_plugin
from worldtree.plugins.runner import Plugin
from worldtree.stack import load_stack
from worldtree.stack.apply import lock_path

Cli = Callable[..., subprocess.CompletedProcess[str]]
HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parents[1] / "examples" / "stack"
TOKEN = "tok-3f9a8b7c6d5e4f30"

#: A DNS plugin keeping its zone in a JSON file: idempotent, reports what it changed, reads its
#: token from the environment (and, misbehaving on purpose, prints it on stderr and stdout).
DNS_PLUGIN = '''
import json, os, sys
ZONE = {zone!r}
cmd = sys.argv[1]
if cmd == "info":
    print(json.dumps({{"name": "fakedns", "version": "1", "credentials": ["FAKEDNS_TOKEN"], "plan": {has_plan}}}))
    sys.exit(0)
req = json.load(sys.stdin)
with open(ZONE + ".env", "w") as fh:
    json.dump(dict(os.environ), fh)
token = os.environ.get("FAKEDNS_TOKEN", "")
print("using token " + token, file=sys.stderr, flush=True)
zone = json.load(open(ZONE)) if os.path.exists(ZONE) else {{}}
changes = []
for rec in req["plan"]["records"]:
    key = rec["name"] + "/" + rec["type"]
    want = rec.get("value") or req["state"].get("outputs", {{}}).get(rec["target"], {{}}).get(rec.get("valueFrom"))
    if zone.get(key) != want:
        changes.append({{"resource": key, "action": "update" if key in zone else "create",
                        "before": zone.get(key), "after": want, "dangerous": {dangerous}}})
        zone[key] = want
if cmd == "apply":
    with open(ZONE, "w") as fh:
        json.dump(zone, fh)
    with open(ZONE + ".phases", "a") as fh:
        fh.write(req["phase"] + "\\n")
print(json.dumps({{"apiVersion": "stackflow.plugin/v1", "kind": "Response", "ok": True, "changes": changes,
                  "artifacts": [], "links": ["https://dns.example/zone?token=" + token]}}))
'''


def write_plugin(directory: Path, name: str, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return path


def dns_plugin(tmp_path: Path, has_plan: bool = False, dangerous: bool = False) -> Path:
    zone = tmp_path / "zone.json"
    write_plugin(tmp_path / "plugins", "stackflow-plugin-dns-cloudflare",
                 DNS_PLUGIN.format(zone=str(zone), has_plan=has_plan, dangerous=dangerous))
    return zone


def stack_file(tmp_path: Path, name: str = "vercel-www") -> Path:
    target = tmp_path / f"{name}.yaml"
    target.write_text((EXAMPLES / f"{name}.yaml").read_text())
    return target


ENV = {"FAKEDNS_TOKEN": TOKEN, "OTHER_SECRET": "not-for-plugins-123",
       "WORLDTREE_STORE": "sqlite:///.worldtree/worldtree.db"}  # the store `plan` uses by default


def test_apply_changes_once_then_nothing_and_a_used_plan_is_stale(cli: Cli, tmp_path: Path) -> None:
    zone = dns_plugin(tmp_path)
    stack = stack_file(tmp_path)
    assert cli("plan", "dns", str(stack), "--out", "p").returncode == 0
    first = cli("apply", "dns", str(stack), "--plan", "p", "--approve", env=ENV)
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)["dns"]
    assert result["ok"] is True
    assert result["changes"] == [{"resource": "www/CNAME", "action": "create", "before": None,
                                  "after": "cname.vercel-dns.com.", "dangerous": False}]
    assert json.loads(zone.read_text()) == {"www/CNAME": "cname.vercel-dns.com."}
    state = json.loads((tmp_path / "p" / "stackflow.state.json").read_text())
    assert state["resources"]["dns"] == {"www/CNAME": "cname.vercel-dns.com."}

    again = cli("apply", "dns", str(stack), "--plan", "p", "--approve", env=ENV)
    assert again.returncode == 2
    assert "plan was made for a different stack or state; run plan again" in again.stderr

    assert cli("plan", "dns", str(stack), "--out", "p").returncode == 0
    second = cli("apply", "dns", str(stack), "--plan", "p", "--approve", env=ENV)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["dns"]["changes"] == []
    assert zone.with_suffix(".json.phases").read_text().splitlines() == ["dns-apply", "dns-apply"]


@pytest.mark.parametrize("approval", [[], ["--approve"]])
def test_unapproved_apply_is_refused_before_any_plugin_runs(cli: Cli, tmp_path: Path, approval: list[str]) -> None:
    zone = dns_plugin(tmp_path)
    stack = stack_file(tmp_path)
    cli("plan", "dns", str(stack), "--out", "p")
    proc = cli("apply", "dns", str(stack), "--plan", "p", *approval, env=ENV)
    if approval:
        assert proc.returncode == 0 and zone.exists()
    else:
        assert proc.returncode == 2 and "apply needs approval" in proc.stderr
        assert not zone.exists()


def test_gated_ci_environment_approves(cli: Cli, tmp_path: Path) -> None:
    zone = dns_plugin(tmp_path)
    stack = stack_file(tmp_path)
    cli("plan", "dns", str(stack), "--out", "p")
    proc = cli("apply", "dns", str(stack), "--plan", "p", env={**ENV, "WORLDTREE_APPLY_APPROVED": "1"})
    assert proc.returncode == 0, proc.stderr
    assert zone.exists()


def test_stack_edited_after_plan_is_refused(cli: Cli, tmp_path: Path) -> None:
    zone = dns_plugin(tmp_path)
    stack = stack_file(tmp_path)
    cli("plan", "dns", str(stack), "--out", "p")
    stack.write_text(stack.read_text().replace("proxied: false", "proxied: true"))
    proc = cli("apply", "dns", str(stack), "--plan", "p", "--approve", env=ENV)
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("plan was made for a different stack or state; run plan again")
    assert not zone.exists()


def test_plan_file_edited_after_review_is_refused(cli: Cli, tmp_path: Path) -> None:
    zone = dns_plugin(tmp_path)
    stack = stack_file(tmp_path)
    cli("plan", "dns", str(stack), "--out", "p")
    plan_file = tmp_path / "p" / "stackflow.dns-plan.json"
    plan = json.loads(plan_file.read_text())
    plan["records"][0]["value"] = "evil.example."
    plan_file.write_text(json.dumps(plan))
    proc = cli("apply", "dns", str(stack), "--plan", "p", "--approve", env=ENV)
    assert proc.returncode == 2 and "plan file was edited" in proc.stderr
    assert not zone.exists()


def test_credentials_reach_only_the_plugin_and_are_masked_everywhere(cli: Cli, tmp_path: Path) -> None:
    zone = dns_plugin(tmp_path)
    stack = stack_file(tmp_path)
    cli("plan", "dns", str(stack), "--out", "p")
    proc = cli("apply", "dns", str(stack), "--plan", "p", "--approve", env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert "[plugin] using token ***" in proc.stderr.splitlines()
    assert json.loads(proc.stdout)["dns"]["links"] == ["https://dns.example/zone?token=***"]
    written = "".join(p.read_text() for p in (tmp_path / "p").iterdir() if p.is_file())
    assert TOKEN not in proc.stdout + proc.stderr + written
    seen = json.loads(Path(str(zone) + ".env").read_text())
    assert seen["FAKEDNS_TOKEN"] == TOKEN
    assert "OTHER_SECRET" not in seen and "WORLDTREE_STORE" not in seen
    assert set(seen) <= {"FAKEDNS_TOKEN", "PATH", "HOME", "LANG", "TZ", "USER", "LOGNAME", "SHELL", "TMPDIR",
                         "TERM", "LC_CTYPE", "PWD", "SHLVL", "_", "LC_ALL"}


def test_dangerous_change_needs_allow_dangerous(cli: Cli, tmp_path: Path) -> None:
    zone = dns_plugin(tmp_path, has_plan=True, dangerous=True)
    stack = stack_file(tmp_path)
    cli("plan", "dns", str(stack), "--out", "p")
    refused = cli("apply", "dns", str(stack), "--plan", "p", "--approve", env=ENV)
    assert refused.returncode == 2
    assert "would make dangerous change(s) to www/CNAME" in refused.stderr and "--allow-dangerous" in refused.stderr
    assert not zone.exists()
    allowed = cli("apply", "dns", str(stack), "--plan", "p", "--approve", "--allow-dangerous", env=ENV)
    assert allowed.returncode == 0, allowed.stderr
    assert zone.exists()


def test_missing_plugin_names_what_was_looked_for(cli: Cli, tmp_path: Path) -> None:
    stack = stack_file(tmp_path)
    cli("plan", "dns", str(stack), "--out", "p")
    proc = cli("apply", "dns", str(stack), "--plan", "p", "--approve", env={"PATH": str(tmp_path / "bin")})
    assert proc.returncode == 2
    assert ("looked for stackflow-plugin-dns-cloudflare or worldtree-plugin-dns-cloudflare in plugins/ and on $PATH"
            in proc.stderr)


def test_plugin_on_path_is_found_after_plugins_dir(tmp_path: Path) -> None:
    on_path = write_plugin(tmp_path / "bin", "worldtree-plugin-dns-x", "print('{}')\n")
    assert find_plugin("dns", "x", tmp_path / "plugins", str(tmp_path / "bin")) == on_path.resolve()
    local = write_plugin(tmp_path / "plugins", "stackflow-plugin-dns-x", "print('{}')\n")
    assert find_plugin("dns", "x", tmp_path / "plugins", str(tmp_path / "bin")) == local.resolve()


def test_hanging_plugin_is_killed_at_its_timeout(cli: Cli, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    write_plugin(tmp_path / "plugins", "stackflow-plugin-dns-cloudflare", f'''
        import json, os, sys, time
        if sys.argv[1] == "info":
            print(json.dumps({{"name": "hang"}}))
            sys.exit(0)
        open({str(pidfile)!r}, "w").write(str(os.getpid()))
        time.sleep(120)
    ''')
    stack = stack_file(tmp_path)
    cli("plan", "dns", str(stack), "--out", "p")
    started = time.monotonic()
    proc = cli("apply", "dns", str(stack), "--plan", "p", "--approve", "--plugin-timeout", "1")
    elapsed = time.monotonic() - started
    assert proc.returncode == 1
    assert "stackflow-plugin-dns-cloudflare apply timed out after 1 s and was killed" in proc.stderr
    assert elapsed < 15
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.parametrize(("body", "message"), [
    ("import sys\nprint('boom', file=sys.stderr)\nsys.exit(3)\n", "exited with code 3"),
    ("print('not json')\n", "printed invalid JSON on stdout"),
    ("print('{\"ok\": true}')\n", "stdout is not a Response"),
    ("import sys\nsys.stderr.write('e' * 3_000_000)\nsys.stdout.write('x' * 17_000_000)\n", "printed more than"),
])
def test_plugin_protocol_breaks_are_clear_errors(tmp_path: Path, body: str, message: str) -> None:
    path = write_plugin(tmp_path, "stackflow-plugin-dns-bad",
                        "import sys\nif sys.argv[1] == 'info':\n    print('{}')\n    sys.exit(0)\n" + body)
    plugin = Plugin(path, environ={"PATH": os.environ["PATH"]}, timeout=10)
    with pytest.raises(PluginError, match=message):
        plugin.call("apply", {"apiVersion": "stackflow.plugin/v1", "kind": "Request"})


GENERIC_PLUGIN = '''
import json, sys
if sys.argv[1] == "info":
    print(json.dumps({{"name": "generic"}}))
    sys.exit(0)
req = json.load(sys.stdin)
with open({log!r}, "a") as fh:
    fh.write(sys.argv[0].rsplit("/", 1)[1] + " " + req["phase"] + "\\n")
outputs = {{m["target"]: {{o: "203.0.113.7" for o in m["outputs"]}} for m in req["plan"].get("modules", [])}}
print(json.dumps({{"apiVersion": "stackflow.plugin/v1", "kind": "Response", "ok": True, "outputs": outputs,
                  "changes": [{{"resource": req["phase"], "action": "apply"}}]}}))
'''


def test_apply_all_runs_phases_in_order_and_iac_outputs_feed_state(cli: Cli, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    names = ["dns-cloudflare", "iac-gcp", "deploy-vercel", "deploy-vhost", "deploy-cloud-run", "observe-prometheus"]
    for name in names:
        write_plugin(tmp_path / "plugins", f"stackflow-plugin-{name}", GENERIC_PLUGIN.format(log=str(log)))
    stack = stack_file(tmp_path, "svc-plus")
    assert cli("plan", "all", str(stack), "--out", "p").returncode == 0
    proc = cli("apply", "all", str(stack), "--plan", "p", "--approve")
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text().splitlines()
    assert [c.split()[1] for c in calls] == ["dns-apply", "iac-apply", "deploy-apply", "deploy-apply",
                                            "deploy-apply", "observe-apply"]
    assert {c.split()[0] for c in calls} == {f"stackflow-plugin-{n}" for n in names}
    state = json.loads((tmp_path / "p" / "stackflow.state.json").read_text())
    assert state["outputs"] == {"vhost-api": {"endpoints.public_ipv4": "203.0.113.7"}}
    for phase in ("dns", "iac", "deploy", "observe"):
        assert json.loads((tmp_path / "p" / f"stackflow.{phase}-apply.json").read_text())["ok"] is True


def test_second_applier_of_the_same_stack_and_env_is_refused(cli: Cli, tmp_path: Path) -> None:
    import fcntl

    zone = dns_plugin(tmp_path)
    stack = stack_file(tmp_path)
    cli("plan", "dns", str(stack), "--out", "p")
    fd = os.open(lock_path(tmp_path / "p", load_stack(stack)), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running apply holds
        proc = cli("apply", "dns", str(stack), "--plan", "p", "--approve", env=ENV)
    finally:
        os.close(fd)
    assert proc.returncode == 2 and "another apply of stack svc-plus env (none) is running" in proc.stderr
    assert not zone.exists()
    assert cli("apply", "dns", str(stack), "--plan", "p", "--approve", env=ENV).returncode == 0


TIMED_PLUGIN = '''
import json, sys, time
if sys.argv[1] == "info":
    print(json.dumps({{"name": "timed"}}))
    sys.exit(0)
req = json.load(sys.stdin)
start = time.time()
time.sleep(1.5)
with open({log!r}, "a") as fh:
    fh.write(json.dumps([sys.argv[0].rsplit("-", 1)[1], start, time.time()]) + "\\n")
print(json.dumps({{"apiVersion": "stackflow.plugin/v1", "kind": "Response", "ok": {ok},
                  "changes": [{{"resource": a["target"], "action": "deploy"}} for a in req["plan"]["actions"]]}}))
'''


def _deploy_only_stack(tmp_path: Path) -> Path:
    stack = tmp_path / "two.yaml"
    stack.write_text(textwrap.dedent("""\
        kind: StackFlow
        metadata: {name: two}
        global: {domain: example.com, dns_provider: none, cloud: gcp}
        targets:
          - {id: a, type: alpha, domains: [a.example.com], observe: {blackbox: false}}
          - {id: b, type: beta, domains: [b.example.com], observe: {blackbox: false}}
        """))
    return stack


@pytest.mark.parametrize("concurrency", ["1", "2"])
def test_plugins_of_a_phase_run_up_to_the_concurrency_limit(cli: Cli, tmp_path: Path, concurrency: str) -> None:
    log = tmp_path / "times.log"
    for kind in ("alpha", "beta"):
        write_plugin(tmp_path / "plugins", f"stackflow-plugin-deploy-{kind}",
                     TIMED_PLUGIN.format(log=str(log), ok=True))
    stack = _deploy_only_stack(tmp_path)
    assert cli("plan", "deploy", str(stack), "--out", "p").returncode == 0
    proc = cli("apply", "deploy", str(stack), "--plan", "p", "--approve", "--concurrency", concurrency)
    assert proc.returncode == 0, proc.stderr
    assert [c["resource"] for c in json.loads(proc.stdout)["deploy"]["changes"]] == ["a", "b"]
    (_, s1, e1), (_, s2, e2) = sorted(json.loads(line) for line in log.read_text().splitlines())
    overlapped = s1 < e2 and s2 < e1
    assert overlapped is (concurrency == "2")


def test_a_broken_plugin_lets_the_others_finish_and_be_recorded(cli: Cli, tmp_path: Path) -> None:
    log = tmp_path / "times.log"
    write_plugin(tmp_path / "plugins", "stackflow-plugin-deploy-alpha", TIMED_PLUGIN.format(log=str(log), ok=True))
    write_plugin(tmp_path / "plugins", "stackflow-plugin-deploy-beta", """
        import sys
        if sys.argv[1] == "info":
            print("{}")
            sys.exit(0)
        sys.exit(4)
    """)
    stack = _deploy_only_stack(tmp_path)
    cli("plan", "deploy", str(stack), "--out", "p")
    proc = cli("apply", "deploy", str(stack), "--plan", "p", "--approve")
    assert proc.returncode == 1 and "stackflow-plugin-deploy-beta apply exited with code 4" in proc.stderr
    result = json.loads((tmp_path / "p" / "stackflow.deploy-apply.json").read_text())
    assert result["ok"] is False and [c["resource"] for c in result["changes"]] == ["a"]
    assert json.loads((tmp_path / "p" / "stackflow.state.json").read_text())["resources"]["deploy"] == {"a": None}


def test_every_plugin_is_found_before_any_runs(cli: Cli, tmp_path: Path) -> None:
    zone = dns_plugin(tmp_path)
    stack = stack_file(tmp_path, "svc-plus")
    cli("plan", "all", str(stack), "--out", "p")
    proc = cli("apply", "all", str(stack), "--plan", "p", "--approve", env={**ENV, "PATH": "/nonexistent"})
    assert proc.returncode == 2 and "stackflow-plugin-iac-gcp" in proc.stderr
    assert not zone.exists()


def test_plan_refine_asks_the_plugin_read_only_and_leaves_the_plan_as_the_stack_gives(cli: Cli, tmp_path: Path) -> None:
    zone = dns_plugin(tmp_path, has_plan=True)
    stack = stack_file(tmp_path)
    assert cli("plan", "dns", str(stack), "--out", "plain").returncode == 0
    proc = cli("plan", "dns", str(stack), "--out", "p", "--refine", env=ENV)
    assert proc.returncode == 0, proc.stderr
    changes = json.loads((tmp_path / "p" / "stackflow.dns-changes.json").read_text())
    assert changes["plugins"] == [{"plugin": "stackflow-plugin-dns-cloudflare", "planned": True, "changes": [
        {"resource": "www/CNAME", "action": "create", "before": None, "after": "cname.vercel-dns.com.",
         "dangerous": False}]}]
    assert not zone.exists()  # plan is read-only
    assert (tmp_path / "p" / "stackflow.dns-plan.json").read_text() == \
        (tmp_path / "plain" / "stackflow.dns-plan.json").read_text()
    summary = (tmp_path / "p" / "stackflow.summary.md").read_text()
    assert "- dns: `stackflow-plugin-dns-cloudflare`: 1 change(s)" in summary
    assert TOKEN not in summary + proc.stderr and "[plugin] using token ***" in proc.stderr
    assert cli("apply", "dns", str(stack), "--plan", "p", "--approve", env=ENV).returncode == 0
