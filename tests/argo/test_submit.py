"""``worldtree argo submit|stop`` against a loopback server speaking the Kubernetes API (no cluster
can run here): create, watch to Succeeded/Failed, Ctrl-C and ``stop`` patching ``spec.shutdown``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from argo_schema import schema_errors
from fake_kube import FakeKube

#: These start the CLI as a process (Ctrl-C is a real SIGINT); the in-process test below is the quick one.
pytestmark = pytest.mark.slow
FIXTURES = Path(__file__).parent / "fixtures"
CI = str(FIXTURES / "seed002-ci.yaml")


@pytest.fixture(autouse=True)
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every CLI process here records into a store of the test's own (not .worldtree/ of the checkout)."""
    url = f"sqlite:///{tmp_path}/wt.db"
    monkeypatch.setenv("WORLDTREE_STORE", url)
    return url


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "worldtree.cli.main", *args]


def start(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("KUBECONFIG", None)
    return subprocess.Popen(cli(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def node(name: str, phase: str, started: str) -> dict[str, Any]:
    return {"id": name, "name": name, "displayName": name, "type": "Pod", "phase": phase, "startedAt": started}


def drive(kube: FakeKube, namespace: str, final: str) -> threading.Thread:
    """Play the Argo controller: Running with the build pod, then ``final``."""

    def run() -> None:
        wf = kube.wait_for("workflows")
        name = wf["metadata"]["name"]
        time.sleep(0.3)
        kube.set_status(namespace, name, {"phase": "Running", "nodes": {
            name: {"id": name, "displayName": name, "type": "DAG", "phase": "Running"},
            "build": node("build", "Running", "2026-11-29T00:00:01Z")}})
        time.sleep(0.3)
        pod = "Succeeded" if final == "Succeeded" else "Failed"
        kube.set_status(namespace, name, {"phase": final, "message": None if final == "Succeeded" else "child failed",
                                          "nodes": {"build": node("build", pod, "2026-11-29T00:00:01Z")}})

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(("final", "code"), [("Succeeded", 0), ("Failed", 1)])
def test_submit_watch_exits_by_the_final_phase(tmp_path: Path, store: str, final: str, code: int) -> None:
    with FakeKube() as kube:
        config = kube.kubeconfig(tmp_path / "kubeconfig")
        driver = drive(kube, "ci", final)
        proc = start("argo", "submit", CI, "--kubeconfig", str(config), "--namespace", "ci", "--watch",
                     "--timeout", "60")
        out, err = proc.communicate(timeout=120)
        driver.join(5)
        assert proc.returncode == code, (out, err)
        created = kube.wait_for("workflows")
        name = created["metadata"]["name"]
        assert name.startswith("pipeline-") and created["metadata"]["namespace"] == "ci"
        posted = next(r for r in kube.requests if r.method == "POST")
        assert posted.path == "/apis/argoproj.io/v1alpha1/namespaces/ci/workflows"
        assert schema_errors(posted.body) == []
        lines = out.splitlines()
        assert lines[0] == f"Workflow ci/{name} created"
        assert lines[1].startswith("run ")
        from worldtree.store import open_store

        record = open_store(store).get_run(lines[1].removeprefix("run "))
        assert record is not None and record.state == final.lower()
        assert record.workdir == f"argo://ci/{name}"
        assert "build: Running" in lines and f"build: {final}" in lines
        assert lines[-1].startswith(f"workflow {name}: {final}")
        assert any(r.query.get("watch") for r in kube.requests)  # followed by a watch, not by polling


def test_ctrl_c_stops_the_workflow(tmp_path: Path) -> None:
    with FakeKube() as kube:
        config = kube.kubeconfig(tmp_path / "kubeconfig", namespace="team")
        proc = start("argo", "submit", CI, "--kubeconfig", str(config), "--watch", "--timeout", "60")
        wf = kube.wait_for("workflows", timeout=60)
        name = wf["metadata"]["name"]
        assert wf["metadata"]["namespace"] == "team"  # the kubeconfig context's namespace
        kube.set_status("team", name, {"phase": "Running", "nodes": {"build": node("build", "Running", "t1")}})
        deadline = time.monotonic() + 60
        while not any(r.query.get("watch") for r in kube.requests):  # bounded by the deadline
            assert time.monotonic() < deadline, "the CLI never started watching"
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        patch = kube.wait_request("PATCH", timeout=30)
        assert patch.body == {"spec": {"shutdown": "Stop"}}
        assert patch.path.endswith(f"/namespaces/team/workflows/{name}")
        assert kube.objects[("workflows", "team", name)]["spec"]["shutdown"] == "Stop"
        kube.set_status("team", name, {"phase": "Failed", "message": "Stopped with strategy 'Stop'",
                                       "nodes": {"build": node("build", "Failed", "t1")}})
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, (out, err)
        assert "stopping Workflow" in err and "Traceback" not in err
        assert out.splitlines()[-1] == f"workflow {name}: Failed (Stopped with strategy 'Stop')"


def test_stop_command_and_cron_submit(tmp_path: Path) -> None:
    with FakeKube() as kube:
        config = str(kube.kubeconfig(tmp_path / "kubeconfig"))
        cron = subprocess.run(cli("argo", "submit", str(FIXTURES / "nightly.yaml"), "--kubeconfig", config),
                              capture_output=True, text=True, timeout=120)
        assert cron.returncode == 0, cron.stderr
        assert cron.stdout.strip() == "CronWorkflow default/nightly created"
        created = kube.wait_for("cronworkflows")
        assert created["spec"]["schedules"] == ["0 3 * * *", "30 12 * * 1-5"]
        again = subprocess.run(cli("argo", "submit", str(FIXTURES / "nightly.yaml"), "--kubeconfig", config),
                               capture_output=True, text=True, timeout=120)
        assert again.returncode == 1 and "HTTP 409" in again.stderr and "already exists" in again.stderr
        missing = subprocess.run(cli("argo", "stop", "nope", "--kubeconfig", config), capture_output=True, text=True,
                                 timeout=120)
        assert missing.returncode == 1 and "HTTP 404" in missing.stderr and "Traceback" not in missing.stderr
        subprocess.run(cli("argo", "submit", CI, "--kubeconfig", config, "--name", "ci-7"), check=True,
                       capture_output=True, timeout=120)
        stop = subprocess.run(cli("argo", "stop", "ci-7", "--kubeconfig", config), capture_output=True, text=True,
                              timeout=120)
        assert stop.returncode == 0, stop.stderr
        assert kube.objects[("workflows", "default", "ci-7")]["spec"]["shutdown"] == "Stop"


def test_bad_kubeconfig_and_unreachable_cluster(tmp_path: Path) -> None:
    missing = subprocess.run(cli("argo", "submit", CI, "--kubeconfig", str(tmp_path / "nope")), capture_output=True,
                             text=True, timeout=120)
    assert missing.returncode == 2 and "cannot use this kubeconfig" in missing.stderr
    with FakeKube() as kube:
        config = kube.kubeconfig(tmp_path / "kubeconfig")
    # the server is gone now: a connection refused is one line, exit 1
    gone = subprocess.run(cli("argo", "submit", CI, "--kubeconfig", str(config)), capture_output=True, text=True,
                          timeout=120)
    assert gone.returncode == 1 and "Kubernetes API" in gone.stderr and "Traceback" not in gone.stderr


def test_a_wrong_token_is_refused(tmp_path: Path) -> None:
    with FakeKube() as kube:
        config = kube.kubeconfig(tmp_path / "kubeconfig")
        config.write_text(config.read_text().replace("test-token", "bad-token"))
        proc = subprocess.run(cli("argo", "submit", CI, "--kubeconfig", str(config)), capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 1 and "HTTP 401" in proc.stderr
        assert kube.objects == {}
