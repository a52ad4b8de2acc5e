"""`worldtree run/runs/logs/retry` end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from pathlib import Path

from tests.cli.conftest import Cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_run_json_events_and_store(cli: Cli) -> None:
    code, lines = cli.json_lines("run", str(EXAMPLES / "hello.yaml"))
    assert code == 0
    first = lines[0]
    assert first["event"] == "run" and first["run_id"]
    run_id = first["run_id"]
    node_events = [x for x in lines if x["event"] == "node"]
    assert {(x["node"], x["state"]) for x in node_events} == {
        ("greet/say/hello", "running"), ("greet/say/hello", "succeeded"),
        ("greet/say/where", "running"), ("greet/say/where", "succeeded")}
    for ev in node_events:
        assert ev["run_id"] == run_id and "ts" in ev and "exit_code" in ev and "error" in ev
    assert lines[-1] == {"event": "run_finished", "run_id": run_id, "attempt": 1, "state": "succeeded"}

    listed = json.loads(cli("runs", "--json").stdout)
    assert listed[0]["run_id"] == run_id and listed[0]["state"] == "succeeded"
    shown = json.loads(cli("runs", "show", run_id[:12], "--json").stdout)
    assert [n["state"] for n in shown["nodes"]] == ["succeeded", "succeeded"]
    logs = cli("logs", run_id).stdout.splitlines()
    assert logs[0].startswith("[greet/say/hello] hello from hello on linux/")
    only = cli("logs", run_id, "--node", "greet/say/where").stdout.splitlines()
    assert only == [f"workdir is {cli.cwd}"]


def test_plain_output_is_prefixed_with_node_path(cli: Cli) -> None:
    proc = cli("run", str(EXAMPLES / "parallel-stages.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert "[build/backend/step-1] backend built" in proc.stdout
    assert "[package/archive/step-1] packing app.tar" in proc.stdout


def test_failure_exit_code_and_retry_reruns_only_what_failed(cli: Cli) -> None:
    flag = cli.cwd / "fixed"
    cli.write("p.yaml", f"""
name: retry-me
jobs:
  a: {{steps: [{{run: echo a >> a.log}}]}}
  b: {{needs: [a], steps: [{{run: test -f {flag} && echo b >> b.log}}]}}
  c: {{needs: [b], steps: [{{run: echo c >> c.log}}]}}
  d: {{steps: [{{run: echo d >> d.log}}]}}
""")
    code, lines = cli.json_lines("run", "p.yaml", "--concurrency", "1")
    assert code == 1
    run_id = lines[0]["run_id"]
    final = {x["node"]: x["state"] for x in lines if x["event"] == "node"}
    assert final == {"a/step-1": "succeeded", "b/step-1": "failed", "c/step-1": "skipped", "d/step-1": "succeeded"}
    flag.touch()
    code, lines = cli.json_lines("retry", str(run_id))
    assert code == 0
    assert lines[0]["attempt"] == 2
    final = {x["node"]: x["state"] for x in lines if x["event"] == "node"}
    assert final == {"a/step-1": "reused", "b/step-1": "succeeded", "c/step-1": "succeeded", "d/step-1": "reused"}
    assert (cli.cwd / "a.log").read_text().split() == ["a"]  # not run again
    assert (cli.cwd / "c.log").read_text().split() == ["c"]
    shown = json.loads(cli("runs", "show", str(run_id), "--json").stdout)
    assert shown["attempt"] == 2 and shown["state"] == "succeeded"


def test_secrets_are_masked_everywhere(cli: Cli) -> None:
    secret = "s3cr3t-Value-42"
    multi = "line-one-secret\nline-two-secret"
    cli.write("secrets.env", f'TOKEN={secret}\nCERT="{multi}"\n')
    b64 = base64.b64encode(secret.encode()).decode()
    cli.write("p.yaml", """
jobs:
  leak:
    secrets: [TOKEN, CERT]
    steps:
      - run: |
          echo "token=$TOKEN"
          echo "$TOKEN" | base64
          printf '%s' "$CERT"; echo
          printf 'split: %s' "$TOKEN" | head -c 12; sleep 0.1; printf '%s\\n' "$TOKEN" | tail -c +6
          echo "$TOKEN" >&2
          exit 3
""")
    proc = cli("run", "p.yaml", "--secrets-file", "secrets.env", "--json")
    assert proc.returncode == 1
    run_id = json.loads(proc.stdout.splitlines()[0])["run_id"]
    texts = [proc.stdout, proc.stderr, cli("logs", str(run_id)).stdout, cli("runs", "show", str(run_id)).stdout,
             cli("runs", "show", str(run_id), "--json").stdout, cli("plan", "p.yaml", "--json").stdout]
    if cli.store.startswith("sqlite"):
        texts.append(subprocess.run(["strings", cli.store.removeprefix("sqlite:///")], capture_output=True,
                                    text=True).stdout)
    blob = "\n".join(texts)
    for needle in (secret, b64, b64.rstrip("="), "line-one-secret", "line-two-secret"):
        assert needle not in blob
    assert "token=***" in blob


def test_missing_secret_is_named_never_valued(sqlite_cli: Cli) -> None:
    sqlite_cli.write("p.yaml", "jobs:\n  j: {secrets: [API_KEY], steps: [{run: echo hi}]}\n")
    code, lines = sqlite_cli.json_lines("run", "p.yaml")
    assert code == 1
    node = [x for x in lines if x["event"] == "node"][-1]
    assert node["state"] == "failed" and "API_KEY" in str(node["error"])


def test_logs_follow_streams_a_live_run(sqlite_cli: Cli) -> None:
    sqlite_cli.write("p.yaml", "jobs:\n  j: {steps: [{run: 'for i in 1 2 3; do echo tick $i; sleep 0.3; done'}]}\n")
    import os
    import sys

    env = {**os.environ, "WORLDTREE_STORE": sqlite_cli.store}
    env.pop("WORLDTREE_RUN_ID", None)
    runner = subprocess.Popen([sys.executable, "-m", "worldtree.cli.main", "run", "p.yaml", "--json"],
                              cwd=sqlite_cli.cwd, env=env, stdout=subprocess.PIPE, text=True)
    assert runner.stdout is not None
    run_id = json.loads(runner.stdout.readline())["run_id"]
    follow = sqlite_cli("logs", str(run_id), "--follow", timeout=30)
    runner.wait(timeout=30)
    assert follow.stdout.split("\n")[:3] == ["[j/step-1] tick 1", "[j/step-1] tick 2", "[j/step-1] tick 3"]


def test_sigkill_leaves_a_readable_store_and_an_interrupted_retryable_run(sqlite_cli: Cli) -> None:
    import os
    import signal
    import sys

    sqlite_cli.write("p.yaml", "jobs:\n  a: {steps: [{run: echo a}]}\n"
                     "  b: {needs: [a], steps: [{run: 'test -f go || sleep 30'}]}\n")
    env = {**os.environ, "WORLDTREE_STORE": sqlite_cli.store}
    env.pop("WORLDTREE_RUN_ID", None)
    proc = subprocess.Popen([sys.executable, "-m", "worldtree.cli.main", "run", "p.yaml", "--json"],
                            cwd=sqlite_cli.cwd, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout is not None
    run_id = json.loads(proc.stdout.readline())["run_id"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if '"b/step-1"' in line and '"running"' in line:
            break
    time.sleep(0.3)  # let the writer flush
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    shown = json.loads(sqlite_cli("runs", "show", str(run_id), "--json").stdout)
    assert shown["state"] == "interrupted"
    (sqlite_cli.cwd / "go").touch()
    code, lines = sqlite_cli.json_lines("retry", str(run_id))
    assert code == 0
    assert lines[0]["attempt"] == 2
    states = {x["node"]: x["state"] for x in lines if x["event"] == "node"}
    assert states == {"a/step-1": "reused", "b/step-1": "succeeded"}


def test_literal_registry_password_is_masked_and_warned(sqlite_cli: Cli) -> None:
    secret = "Literal-Registry-Pw-9"
    sqlite_cli.write("p.yaml", f"""
jobs:
  j:
    image_registry: registry.example
    image_registry_username: me
    image_registry_password: {secret}
    steps: [{{run: echo hi, engine: host}}]
""")
    proc = sqlite_cli("run", "p.yaml")
    assert proc.returncode == 0, proc.stderr
    assert "warning: a password or key is written in `image_registry_password:`" in proc.stderr
    plan = sqlite_cli("plan", "p.yaml", "--json").stdout
    db = Path(sqlite_cli.store.removeprefix("sqlite:///"))
    stored = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    assert secret not in proc.stdout + proc.stderr + plan
    assert secret.encode() not in stored
