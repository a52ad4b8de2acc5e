"""Mirroring a watched Workflow into the run store (SQLite and PostgreSQL): task phases become
node states, the Workflow's end the run's, and a stop ends the run cancelled."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_kube import FakeKube

from worldtree.argo.kube import ArgoClient
from worldtree.argo.mirror import RunMirror
from worldtree.cli.argo import build_export
from worldtree.store import open_store
from worldtree.testing.stores import pg_unavailable_reason, store_url

FULL = str(Path(__file__).parent / "fixtures" / "full-ci.yaml")


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "postgres":
        reason = pg_unavailable_reason()
        if reason:
            pytest.skip(f"!!! PostgreSQL tests skipped: {reason}")
    with store_url(request.param, tmp_path) as url:
        opened = open_store(url)
        yield opened
        opened.close()


def pod(task: str, phase: str, **extra: Any) -> dict[str, Any]:
    return {"displayName": task, "type": "Pod", "phase": phase, "startedAt": "2026-11-29T10:00:00Z", **extra}


def run_workflow(tmp_path: Path, store: Any, statuses: list[dict[str, Any]], stop: bool = False) -> Any:
    result = build_export(FULL, None)
    with FakeKube() as kube:
        client = ArgoClient(str(kube.kubeconfig(tmp_path / "kc")))
        name = client.create(result.manifest, "ci")["metadata"]["name"]
        mirror = RunMirror(store, result.graph, result.tasks, namespace="ci", workflow=name)
        assert store.get_run(mirror.run_id).state == "running"

        def controller() -> None:
            for status in statuses:
                time.sleep(0.1)
                kube.set_status("ci", name, status)

        thread = threading.Thread(target=controller, daemon=True)
        thread.start()
        final = client.follow(name, "ci", mirror, timeout=30)
        thread.join(5)
        state = mirror.finish(final["status"]["phase"], stopped=stop)
    return mirror.run_id, state


def test_phases_become_node_and_run_states(tmp_path: Path, store: Any) -> None:
    running = {"phase": "Running", "nodes": {"checkout": pod("checkout", "Running")}}
    done = {"phase": "Failed", "message": "child 'build' failed", "nodes": {
        "checkout": pod("checkout", "Succeeded", finishedAt="2026-11-29T10:00:05Z"),
        "build": pod("build", "Failed", message="exit code 2"),
        "notify": pod("notify", "Succeeded"),
        "deploy": {"displayName": "deploy", "type": "Omitted", "phase": "Omitted"},
        "report": pod("report", "Succeeded"),
    }}
    run_id, state = run_workflow(tmp_path, store, [running, done])
    assert state == "failed"
    record = store.get_run(run_id)
    assert record.state == "failed" and record.workdir.startswith("argo://ci/")
    nodes = {n.node: n for n in store.node_records(run_id)}
    assert {k: v.state for k, v in nodes.items()} == {
        "checkout/step-1": "succeeded", "checkout/two-lines": "succeeded",  # one task: both steps share it
        "build/step-1": "failed", "test/step-1": "skipped", "notify/step-1": "succeeded",
        "deploy/step-1": "skipped", "report/step-1": "succeeded"}
    assert nodes["build/step-1"].error == "exit code 2"


def test_a_stopped_workflow_is_a_cancelled_run(tmp_path: Path, store: Any) -> None:
    running = {"phase": "Running", "nodes": {"checkout": pod("checkout", "Running")}}
    stopped = {"phase": "Failed", "message": "Stopped with strategy 'Stop'",
               "nodes": {"checkout": pod("checkout", "Failed", message="Stopped with strategy 'Stop'")}}
    run_id, state = run_workflow(tmp_path, store, [running, stopped], stop=True)
    assert state == "cancelled" and store.get_run(run_id).state == "cancelled"
    states = {n.node: n.state for n in store.node_records(run_id)}
    assert states["checkout/step-1"] == "failed" and states["build/step-1"] == "cancelled"
