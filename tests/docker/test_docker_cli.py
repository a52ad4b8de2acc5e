"""End to end: `worldtree run FILE` in a subprocess with container steps, checked through the API."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from docker_support import leftovers

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker_host")]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "containers"
WORLDTREE = [sys.executable, "-m", "worldtree.cli.main"]


def worldtree(*args: str, cwd: Path, env: dict[str, str] | None = None,
              timeout: float = 180) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "WORLDTREE_RUN_ID"}
    return subprocess.run([*WORLDTREE, "run", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**full_env, **(env or {})})


def run_id_of(output: str) -> str:
    match = re.search(r"run (\S+) attempt", output)
    assert match, output
    return match.group(1)


def assert_clean(output: str) -> None:
    assert asyncio.run(leftovers(run_id_of(output))) == {"containers": [], "networks": []}


@pytest.fixture(autouse=True)
def _needs_cli() -> None:
    try:
        import worldtree.cli.main  # noqa: F401
    except ImportError as exc:  # the CLI is built in parallel with this backend
        pytest.skip(f"worldtree CLI not importable yet: {exc}")


def test_seed_plugin_example_prints_its_settings(tmp_path: Path) -> None:
    proc = worldtree(str(EXAMPLES / "plugin.yml"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for line in ("PIPELINE_PLUGIN_SETTINGS_USERNAME=test", "PIPELINE_PLUGIN_SETTINGS_TOKEN=test",
                 "PIPELINE_PLUGIN_SETTINGS_REPOSITORY=https://github.com/go-idp/pipeline"):
        assert line in proc.stdout
    assert_clean(proc.stdout)


def test_workspace_is_shared_across_steps_jobs_and_the_host(tmp_path: Path) -> None:
    proc = worldtree(str(EXAMPLES / "image-steps.yaml"), "--workdir", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "hello from write in a container" in proc.stdout
    assert "artifact seen by another job" in proc.stdout and "and by the host" in proc.stdout
    assert (tmp_path / "out" / "artifact.txt").is_file()
    assert_clean(proc.stdout)


def test_compose_service_by_name_and_by_published_port(tmp_path: Path) -> None:
    proc = worldtree(str(EXAMPLES / "step-service-docker-compose.yaml"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("hello from web") == 2
    assert_clean(proc.stdout)


PIPELINE = """
name: containers-e2e
image: docker.io/library/busybox:latest
environment: {{FROM_FILE: file-value}}
stages:
  - name: main
    jobs:
      - name: job
        steps:
{steps}
"""


def write_pipeline(tmp_path: Path, steps: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE.format(steps=steps))
    return path


def test_env_exit_code_and_run_id_reach_the_container(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, """
          - name: env
            command: >-
              echo "env=$FROM_FILE allowed=${WT_E2E_ALLOWED:-no}
              hidden=${WT_E2E_HIDDEN:-no} run=$WORLDTREE_RUN_ID"
          - name: fail
            command: exit 7
""")
    proc = worldtree(str(path), "--allow-env", "WT_E2E_ALLOWED", cwd=tmp_path,
                     env={"WT_E2E_ALLOWED": "yes", "WT_E2E_HIDDEN": "yes"})
    assert proc.returncode != 0
    run_id = run_id_of(proc.stdout)
    assert f"env=file-value allowed=yes hidden=no run={run_id}" in proc.stdout
    assert "exit code 7" in proc.stdout
    assert_clean(proc.stdout)


def test_language_step_selects_the_image(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, """
          - name: js
            command: echo "script ran"
            language: {name: node, version: 16}
""")
    proc = worldtree(str(path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "stand-in node 16" in proc.stdout and "script ran" in proc.stdout


@pytest.mark.slow
def test_timeout_stops_and_removes_the_container(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, """
          - name: slow
            timeout: 2
            command: echo started; sleep 60
""")
    began = time.monotonic()
    proc = worldtree(str(path), cwd=tmp_path)
    assert proc.returncode != 0 and time.monotonic() - began < 30
    assert "timeout" in proc.stdout.lower()
    assert_clean(proc.stdout)


@pytest.mark.slow
def test_interrupt_removes_containers_and_networks(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, """
          - name: svc
            service:
              name: e2e-cancel
              config: "services: {idle: {image: docker.io/library/busybox:latest, command: sleep 600}}"
          - name: long
            command: echo started; sleep 600
""")
    env = {k: v for k, v in os.environ.items() if k != "WORLDTREE_RUN_ID"}
    proc = subprocess.Popen([*WORLDTREE, "run", str(path)], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "started" in line and "long" in line:
            break
    run_id = run_id_of("".join(seen))
    assert asyncio.run(leftovers(run_id))["containers"], "service and step containers should be up"
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0, "".join(seen) + rest
    assert asyncio.run(leftovers(run_id)) == {"containers": [], "networks": []}
