"""The run's state lives in the store: cancel from another process, retries that race, write first
then show, secrets by reference. Each on SQLite and on PostgreSQL, with real CLI processes."""

from __future__ import annotations

import json
import os
import signal
import time

from tests.cli.conftest import Cli


def _wait_for_state(cli: Cli, run_id: str | None, state: str, timeout: float = 20) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    last: dict[str, object] = {}
    while time.monotonic() < deadline:
        runs = json.loads(cli("runs", "--json").stdout or "[]")
        mine = [r for r in runs if run_id is None or r["run_id"] == run_id]
        if mine and mine[0]["state"] == state:
            return mine[0]
        last = mine[0] if mine else {}
        time.sleep(0.1)
    raise AssertionError(f"run never reached {state}: {last}")


def test_cancel_from_another_process_stops_the_run(cli: Cli) -> None:
    cli.write("p.yaml", "post: echo post-ran\njobs:\n  a: {steps: [{run: sleep 60}]}\n"
                        "  b: {needs: [a], steps: [{run: 'true'}]}\n")
    proc = cli.popen("run", "p.yaml", "--json")
    assert proc.stdout is not None
    run_id = json.loads(proc.stdout.readline())["run_id"]
    _wait_for_state(cli, run_id, "running")
    time.sleep(0.3)
    started = time.monotonic()
    cancel = cli("cancel", run_id)
    assert cancel.returncode == 0, cancel.stderr
    assert proc.wait(timeout=30) == 1
    assert time.monotonic() - started < 10
    shown = cli("runs", "show", run_id, "--json")
    record = json.loads(shown.stdout)
    states = {n["node"]: n["state"] for n in record["nodes"]}
    assert states == {"a/step-1": "cancelled", "b/step-1": "cancelled", "post": "succeeded"}
    assert record["state"] == "cancelled"
    again = cli("cancel", run_id)
    assert again.returncode == 2 and "not running" in again.stderr


def test_two_retries_of_one_run_at_the_same_instant_one_wins(cli: Cli) -> None:
    """Before: both started (1 in 5 on SQLite): the step ran twice, the second marked the first interrupted."""
    counter = cli.cwd / "count"
    go = cli.cwd / "go"
    cli.write("p.yaml", f"jobs:\n  a: {{steps: [{{run: 'test -f {go} && echo x >> {counter} && sleep 1'}}]}}\n")
    code, lines = cli.json_lines("run", "p.yaml")
    assert code == 1
    run_id = str(lines[0]["run_id"])
    go.touch()
    first, second = cli.popen("retry", run_id), cli.popen("retry", run_id)
    results = sorted([first.wait(timeout=60), second.wait(timeout=60)])
    errors = (first.stderr.read() if first.stderr else "") + (second.stderr.read() if second.stderr else "")
    assert results[0] == 0 and results[1] != 0
    assert "retried at the same time" in errors or "still running" in errors, errors
    assert counter.read_text().count("x") == 1


def test_kill_9_during_heavy_output_loses_nothing_that_was_shown(cli: Cli) -> None:
    """Write first, then show: every line the console printed is in the store."""
    cli.write("p.yaml", "jobs:\n  a: {steps: [{run: 'i=0; while true; do i=$((i+1)); echo line-$i; done'}]}\n")
    proc = cli.popen("run", "p.yaml")
    assert proc.stdout is not None
    shown: list[str] = []
    deadline = time.monotonic() + 30
    while len(shown) < 20000 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("[a/step-1] line-"):
            shown.append(line.split("] ", 1)[1].strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    rest = proc.stdout.read()
    shown.extend(line.split("] ", 1)[1].strip() for line in rest.splitlines() if line.startswith("[a/step-1] line-"))
    assert len(shown) >= 1000
    runs = json.loads(cli("runs", "--json").stdout)
    logs = cli("logs", str(runs[0]["run_id"]), "--raw")
    stored = set(logs.stdout.split())
    missing = [line for line in shown if line not in stored]
    assert not missing, f"{len(missing)} lines shown but not stored, e.g. {missing[:3]}"
    assert runs[0]["state"] == "interrupted"


def test_retry_runs_the_real_command_not_its_masked_copy(cli: Cli) -> None:
    """Before: a secret value written in a command was stored masked, so retry ran `echo role=***`."""
    go = cli.cwd / "go"
    out = cli.cwd / "out.txt"
    cli.write("secrets.env", "ROLE=admin\n")
    cli.write("p.yaml", f"jobs:\n  a:\n    secrets: [ROLE]\n"
                        f"    steps: [{{run: 'echo role=admin > {out}; test -f {go}'}}]\n")
    code, lines = cli.json_lines("run", "p.yaml", "--secrets-file", "secrets.env")
    assert code == 1
    go.touch()
    assert cli("retry", str(lines[0]["run_id"]), "--secrets-file", "secrets.env").returncode == 0
    assert out.read_text() == "role=admin\n"
    shown = cli("runs", "show", str(lines[0]["run_id"]))
    assert "admin" not in shown.stdout


def test_a_usage_error_while_starting_leaves_no_run_behind(cli: Cli) -> None:
    cli.write("p.yaml", "jobs:\n  a: {steps: [{run: 'true'}]}\n")
    bad = cli("run", "p.yaml", "--config", "/etc/passwd")
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    missing_secrets = cli("run", "p.yaml", "--secrets-file", "nope.env", "--workdir", "made-by-run")
    assert missing_secrets.returncode == 2
    assert not (cli.cwd / "made-by-run").exists()
    assert json.loads(cli("runs", "--json").stdout or "[]") == []


def test_plan_prints_the_timeout_the_engine_applies(cli: Cli) -> None:
    """Before: plan printed a step's own 600 s where the engine stops it at its job's 60 s."""
    cli.write("p.yaml", "stages:\n  - name: s\n    jobs:\n      - name: j\n        timeout: 60\n"
                        "        steps: [{command: 'true', timeout: 600}]\n")
    plan = cli("plan", "p.yaml", "--json")
    assert plan.returncode == 0, plan.stderr
    node = json.loads(plan.stdout)["nodes"][0]
    assert node["effective_timeout"] == {"seconds": 60, "level": "job"}
    text = cli("plan", "p.yaml").stdout
    assert "timeout: 60s (job)" in text


def test_a_step_printing_faster_than_the_store_writes_is_slowed_not_failed(cli: Cli) -> None:
    """Before: past 200,000 waiting lines the run ended as `error`. Now reading pauses (backpressure)."""
    cli.write("p.yaml", "jobs:\n  a: {steps: [{run: 'yes | head -c 2000000000', timeout: 4}]}\n")
    started = time.monotonic()
    proc = cli("run", "p.yaml", timeout=60)
    assert proc.returncode == 1
    assert time.monotonic() - started < 30
    assert "timed_out" in proc.stderr and "error" not in proc.stderr, proc.stderr[-500:]
    shown = sum(1 for line in proc.stdout.splitlines() if line == "[a/step-1] y")
    runs = json.loads(cli("runs", "--json").stdout)
    stored = cli("logs", str(runs[0]["run_id"]), "--raw").stdout.count("y\n")
    assert shown > 10_000 and stored >= shown


def test_a_step_named_after_a_secret_value_is_refused_before_anything_is_stored(cli: Cli) -> None:
    cli.write("secrets.env", "TOKEN=hunter22\n")
    cli.write("p.yaml", "jobs:\n  deploy-hunter22:\n    secrets: [TOKEN]\n    steps: [{run: 'true'}]\n")
    proc = cli("run", "p.yaml", "--secrets-file", "secrets.env")
    assert proc.returncode == 2 and "contains a secret value" in proc.stderr
    assert "hunter22" not in proc.stdout + proc.stderr
    assert json.loads(cli("runs", "--json").stdout or "[]") == []
