"""The consumer and the scheduler on a real store and a local git repository, without a server."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from gitops_fakes import commit, github_push, make_repo

from worldtree.app.secrets_store import load_keys
from worldtree.app.service import ServiceConfig
from worldtree.gitops import repos
from worldtree.gitops.generator import Generator
from worldtree.gitops.repos import gitops_store
from worldtree.gitops.schedules import Scheduler
from worldtree.store import RunStore

CI = """\
name: nightly
on:
  push:
    branches: [main]
  schedule:
    - cron: "0 3 * * *"
      timezone: Europe/Berlin
jobs:
  a:
    steps:
      - run: cat hello.txt
"""


def test_a_push_to_the_default_branch_registers_schedules_that_run_the_branch_tip(
        run_store: RunStore, tmp_path: Path) -> None:
    bare, sha = make_repo(tmp_path, {"ci.yaml": CI, "hello.txt": "v1\n"})
    data = tmp_path / "data"
    keys = load_keys(str(data))
    repo = repos.add(run_store, keys, name="acme/app", provider="github", clone_url=f"file://{bare}",
                     webhook_secret="s")
    gs = gitops_store(run_store)
    payload = github_push("acme/app", f"file://{bare}", sha).decode()
    row = gs.add_delivery(provider="github", delivery_id="d1", repository_id=repo["id"], event="push",
                          payload=payload)
    generator = Generator(run_store, ServiceConfig(str(data)), keys, owner="t")
    assert generator.handle_one()
    delivery = gs.delivery(str(row))
    assert delivery is not None and delivery.state == "done" and delivery.run_id
    first_run = run_store.get_run(delivery.run_id)
    assert first_run is not None and (Path(first_run.workdir) / "hello.txt").read_text() == "v1\n"
    [schedule] = gs.schedules()
    assert (schedule.cron, schedule.timezone, schedule.ref) == ("0 3 * * *", "Europe/Berlin", "refs/heads/main")

    # the branch moves on; the 03:00 Berlin tick runs its new tip
    sha2 = commit(tmp_path / "work", bare, {"hello.txt": "v2\n"})
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    berlin_three = tomorrow.astimezone(ZoneInfo("Europe/Berlin")).replace(
        hour=3, minute=0, second=0, microsecond=0)
    scheduler = Scheduler(run_store, ServiceConfig(str(data)), owner="t",
                          clock=lambda: berlin_three.astimezone(UTC) + timedelta(seconds=5))
    [run_id] = scheduler.tick()
    run = run_store.get_run(run_id)
    assert run is not None
    assert (Path(run.workdir) / "hello.txt").read_text() == "v2\n"
    assert run.options["env"]["CI_EVENT"] == "schedule" and run.options["env"]["CI_COMMIT_SHA"] == sha2
    assert scheduler.tick() == []  # the same tick never twice

    # a push elsewhere does not touch the schedules; one without on.schedule on main drops them
    gs.add_delivery(provider="github", delivery_id="d2", repository_id=repo["id"], event="push",
                    payload=github_push("acme/app", f"file://{bare}", sha2, ref="refs/heads/dev").decode())
    assert generator.handle_one()
    assert len(gs.schedules()) == 1
    sha3 = commit(tmp_path / "work", bare, {"ci.yaml": CI.replace('  schedule:\n    - cron: "0 3 * * *"\n'
                                                                  "      timezone: Europe/Berlin\n", "")})
    data_push = json.loads(github_push("acme/app", f"file://{bare}", sha3))
    gs.add_delivery(provider="github", delivery_id="d3", repository_id=repo["id"], event="push",
                    payload=json.dumps(data_push))
    assert generator.handle_one()
    assert gs.schedules() == []


def test_a_replayed_consumer_records_the_run_its_predecessor_made(run_store: RunStore, tmp_path: Path) -> None:
    bare, sha = make_repo(tmp_path, {"ci.yaml": CI, "hello.txt": "v1\n"})
    data = tmp_path / "data"
    keys = load_keys(str(data))
    repo = repos.add(run_store, keys, name="acme/app", provider="github", clone_url=f"file://{bare}",
                     webhook_secret="s")
    gs = gitops_store(run_store)
    row = gs.add_delivery(provider="github", delivery_id="d1", repository_id=repo["id"], event="push",
                          payload=github_push("acme/app", f"file://{bare}", sha).decode())
    generator = Generator(run_store, ServiceConfig(str(data)), keys, owner="dies", lease_seconds=0.1)
    claimed = gs.claim_delivery("dies", 0.1)
    assert claimed is not None
    made = generator.process(claimed)  # the run is made; the consumer dies before recording it
    time.sleep(0.2)
    assert Generator(run_store, ServiceConfig(str(data)), keys, owner="next").handle_one()
    delivery = gs.delivery(str(row))
    assert delivery is not None and delivery.state == "done" and delivery.run_id == made["run_id"]
    assert len(run_store.list_runs()) == 1  # not a second run


@pytest.mark.parametrize(("text", "message"), [
    ("jobs: [unclosed\n", "ci.yaml:"),  # not YAML
    ("on: 5\njobs:\n  a:\n    steps:\n      - run: x\n", "on:"),
])
def test_a_broken_pipeline_file_fails_the_delivery_once_with_the_reason(run_store: RunStore, tmp_path: Path,
                                                                        text: str, message: str) -> None:
    bare, sha = make_repo(tmp_path, {"ci.yaml": text})
    data = tmp_path / "data"
    keys = load_keys(str(data))
    repo = repos.add(run_store, keys, name="acme/app", provider="github", clone_url=f"file://{bare}",
                     webhook_secret="s")
    gs = gitops_store(run_store)
    row = gs.add_delivery(provider="github", delivery_id="d1", repository_id=repo["id"], event="push",
                          payload=github_push("acme/app", f"file://{bare}", sha).decode())
    assert Generator(run_store, ServiceConfig(str(data)), keys, owner="t").handle_one()
    delivery = gs.delivery(str(row))
    assert delivery is not None and delivery.state == "failed" and delivery.sha == sha
    assert message in (delivery.detail or ""), delivery.detail
    assert run_store.list_runs() == []
