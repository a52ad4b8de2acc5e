"""``worldtree.argo.kube`` in process, against the loopback Kubernetes API: create, follow a watch
through several versions (and a watch that times out and is renewed), merge-patch stop."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from fake_kube import FakeKube

from worldtree.argo import kube as kube_module
from worldtree.argo.kube import ArgoClient, PhaseTracker
from worldtree.errors import BackendError

WORKFLOW = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "wf-"},
            "spec": {"entrypoint": "main", "templates": [{"name": "main", "container": {"image": "alpine"}}]}}


def test_follow_reports_each_change_until_the_final_phase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kube_module, "WATCH_SECONDS", 1)  # every watch ends after 1 s and is renewed
    with FakeKube() as kube:
        client = ArgoClient(str(kube.kubeconfig(tmp_path / "kc", namespace="ns1")))
        assert client.default_namespace == "ns1"
        name = client.create(WORKFLOW, "ns1")["metadata"]["name"]
        assert name.startswith("wf-")

        def controller() -> None:
            time.sleep(0.2)
            kube.set_status("ns1", name, {"phase": "Running", "nodes": {
                "a": {"displayName": "a", "phase": "Running", "startedAt": "1"}}})
            time.sleep(1.5)  # longer than one watch: the client must renew it and miss nothing
            kube.set_status("ns1", name, {"phase": "Running", "nodes": {
                "a": {"displayName": "a", "phase": "Succeeded", "startedAt": "1"},
                "b": {"displayName": "b", "phase": "Failed", "startedAt": "2", "message": "exit code 1"}}})
            kube.set_status("ns1", name, {"phase": "Failed", "message": "child 'b' failed", "nodes": {}})

        thread = threading.Thread(target=controller, daemon=True)
        thread.start()
        lines: list[str] = []
        final = client.follow(name, "ns1", PhaseTracker(lines.append), timeout=30)
        thread.join(5)
        assert final["status"]["phase"] == "Failed"
        assert lines == [f"workflow {name}: Pending", "a: Running", f"workflow {name}: Running", "a: Succeeded",
                         "b: Failed (exit code 1)", f"workflow {name}: Failed (child 'b' failed)"]
        watches = [r for r in kube.requests if r.query.get("watch")]
        assert len(watches) >= 2
        assert all(r.query["fieldSelector"] == [f"metadata.name={name}"] for r in watches)

        client.stop(name, "ns1")
        patch = kube.wait_request("PATCH")
        assert patch.headers["Content-Type"] == "application/merge-patch+json"
        assert kube.objects[("workflows", "ns1", name)]["spec"]["shutdown"] == "Stop"


def test_follow_reads_again_after_a_410_gone(tmp_path: Path) -> None:
    with FakeKube() as kube:
        client = ArgoClient(str(kube.kubeconfig(tmp_path / "kc")))
        name = client.create(WORKFLOW, "default")["metadata"]["name"]
        kube.expire_watches = 2  # two watches in a row start from a compacted version

        def controller() -> None:
            with kube.cond:  # wait until both stale watches were answered
                kube.cond.wait_for(lambda: kube.expire_watches == 0, 20)
            time.sleep(0.2)
            kube.set_status("default", name, {"phase": "Succeeded", "nodes": {}})

        thread = threading.Thread(target=controller, daemon=True)
        thread.start()
        started = time.monotonic()
        final = client.follow(name, "default", lambda obj: None, timeout=30)
        thread.join(5)
        assert final["status"]["phase"] == "Succeeded"
        assert time.monotonic() - started < 15
        methods = [(r.method, bool(r.query.get("watch"))) for r in kube.requests if r.method == "GET"]
        assert methods[:5] == [("GET", False), ("GET", True), ("GET", False), ("GET", True), ("GET", False)]


def test_follow_gives_up_at_its_deadline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kube_module, "WATCH_SECONDS", 1)
    with FakeKube() as kube:
        client = ArgoClient(str(kube.kubeconfig(tmp_path / "kc")))
        name = client.create(WORKFLOW, "default")["metadata"]["name"]
        started = time.monotonic()
        with pytest.raises(BackendError, match=r"still Pending after 1\.5 s"):
            client.follow(name, "default", lambda obj: None, timeout=1.5)
        assert time.monotonic() - started < 10
