"""The GitOps rows on SQLite and PostgreSQL: replays refused by the index, claims won once, ticks fired once."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from worldtree.app.service import ServiceConfig
from worldtree.errors import ConflictError, UsageError
from worldtree.gitops.repos import gitops_store
from worldtree.gitops.schedules import Scheduler, add_document_schedules, list_schedules
from worldtree.store import RunStore

DOC = "name: nightly\non:\n  schedule:\n    - cron: '*/5 * * * *'\n      timezone: Europe/Berlin\n" \
      "jobs:\n  a:\n    steps:\n      - run: echo tick\n"


def _repo(store: RunStore) -> str:
    return gitops_store(store).add_repository(provider="github", name="o/r", clone_url="x", api_url=None,
                                              ci_file=None, executor="local", webhook_secret="enc",
                                              status_token=None).id


def test_a_replayed_delivery_is_refused_and_a_repository_is_registered_once(run_store: RunStore) -> None:
    gs = gitops_store(run_store)
    repo = _repo(run_store)
    with pytest.raises(ConflictError):
        _repo(run_store)
    first = gs.add_delivery(provider="github", delivery_id="d1", repository_id=repo, event="push", payload="{}")
    assert first is not None
    assert gs.add_delivery(provider="github", delivery_id="d1", repository_id=repo, event="push", payload="{}") is None
    # the same id from another provider is another delivery
    assert gs.add_delivery(provider="gitea", delivery_id="d1", repository_id=repo, event="push", payload="{}")
    assert len(gs.deliveries()) == 2


def test_each_delivery_is_claimed_by_one_consumer_and_retaken_after_its_lease(run_store: RunStore) -> None:
    gs = gitops_store(run_store)
    repo = _repo(run_store)
    for number in range(10):
        gs.add_delivery(provider="github", delivery_id=f"d{number}", repository_id=repo, event="push", payload="{}")
    won: list[str] = []
    lock = threading.Lock()

    def consume(name: str) -> None:
        while (row := gs.claim_delivery(name, lease_seconds=60)) is not None:
            with lock:
                won.append(row.id)

    threads = [threading.Thread(target=consume, args=(f"c{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(won) == sorted(r.id for r in gs.deliveries()) and len(won) == 10  # each exactly once

    # a consumer that died: its lease runs out and the delivery is claimed again, as a new try
    gs.add_delivery(provider="github", delivery_id="late", repository_id=repo, event="push", payload="{}")
    row = gs.claim_delivery("dies", lease_seconds=0.2)
    assert row is not None and row.tries == 1
    assert gs.claim_delivery("other", lease_seconds=60) is None
    time.sleep(0.3)
    again = gs.claim_delivery("other", lease_seconds=60)
    assert again is not None and again.id == row.id and again.tries == 2
    assert not gs.finish_delivery(row.id, row.tries, state="done")  # the dead consumer's finish is fenced off
    assert gs.finish_delivery(again.id, again.tries, state="done")


def test_a_schedule_tick_fires_once_across_schedulers(run_store: RunStore, tmp_path: object) -> None:
    add_document_schedules(run_store, "nightly", DOC)
    [listed] = list_schedules(run_store)
    assert listed["cron"] == "*/5 * * * *" and listed["timezone"] == "Europe/Berlin" and len(listed["next"]) == 3
    now = datetime.now(UTC) + timedelta(minutes=10)  # the schedule is older than the tick
    tick = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
    clock = [tick + timedelta(seconds=1)]
    config = ServiceConfig(str(tmp_path))
    replicas = [Scheduler(run_store, config, owner=f"r{n}", clock=lambda: clock[0]) for n in range(3)]
    fired = [run for replica in replicas for run in replica.tick()]
    assert len(fired) == 1
    assert [r.name for r in run_store.list_runs()] == ["nightly"]
    clock[0] = tick + timedelta(seconds=30)  # later in the same tick: nothing new
    assert [run for replica in replicas for run in replica.tick()] == []
    clock[0] = tick + timedelta(minutes=5, seconds=2)  # the next tick: once more
    assert len([run for replica in replicas for run in replica.tick()]) == 1
    clock[0] = tick + timedelta(minutes=12)  # a tick missed for longer than the grace is not caught up
    assert [run for replica in replicas for run in replica.tick()] == []
    [schedule] = gitops_store(run_store).schedules()
    assert len(gitops_store(run_store).ticks(schedule.id)) == 2


@pytest.mark.parametrize(("cron", "zone", "message"), [
    ("0 0 30 2 *", "UTC", "never fires"),
    ("61 * * * *", "UTC", "not valid"),
    ("* * * * * * *", "UTC", "not valid"),
    ("0 3 * * *", "Mars/Olympus", "unknown timezone"),
    ("0 3 * * *", "../../etc/passwd", "unknown timezone"),
])
def test_bad_schedules_are_refused_with_the_reason(run_store: RunStore, cron: str, zone: str, message: str) -> None:
    document = DOC.replace("*/5 * * * *", cron).replace("Europe/Berlin", zone)
    with pytest.raises(UsageError, match=message):
        add_document_schedules(run_store, "bad", document)
    assert gitops_store(run_store).schedules() == []
