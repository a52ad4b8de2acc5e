"""``on.schedule`` crons fired from the server, once per tick however many replicas run.

Each replica's scheduler thread wakes every second, and for every schedule computes the latest
tick at or before now (croniter, in the schedule's time zone; a sixth field is seconds). A tick
younger than ``grace_seconds`` and not older than the schedule is claimed by inserting
``(schedule_id, tick_at)`` — the primary key makes exactly one replica win — and the winner
creates the run. Ticks missed while no replica ran are not caught up (as a ``CronWorkflow`` with
no ``startingDeadlineSeconds``).

Schedules come from a repository's pipeline file (a push to the default branch registers them;
each fire fetches the branch's current tip) or from a stored document (``POST /api/v1/schedules``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from worldtree.app import service
from worldtree.errors import StoreError, UsageError, WorldtreeError
from worldtree.gitops.payloads import GitEvent
from worldtree.gitops.repos import gitops_store
from worldtree.store.api import RunStore
from worldtree.store.gitops import ScheduleRow

log = logging.getLogger("worldtree.gitops")


def entries(on: dict[str, Any] | None, filename: str) -> list[tuple[str, str]]:
    """``(cron, timezone)`` of each ``on.schedule`` item; UsageError naming the bad one."""
    items = (on or {}).get("schedule") or []
    if not isinstance(items, list):
        raise UsageError(f"{filename}: `on.schedule` must be a list of {{cron: ...}} items")
    out = []
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict) or not isinstance(item.get("cron"), str):
            raise UsageError(f"{filename}: on.schedule item {number} needs `cron: \"m h dom mon dow\"`")
        cron, zone = item["cron"].strip(), str(item.get("timezone") or "UTC")
        check(cron, zone, f"{filename}: on.schedule item {number}")
        out.append((cron, zone))
    return out


def check(cron: str, zone: str, where: str) -> None:
    if not croniter.is_valid(cron) or len(cron.split()) not in (5, 6):
        raise UsageError(f"{where}: cron {cron!r} is not valid; five fields (minute hour day month weekday), "
                         "or six with seconds last")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"{where}: unknown timezone {zone!r}; use an IANA name such as Europe/Berlin") from None
    try:  # valid fields can still name no date (30 February)
        next_times(cron, zone, datetime.now(UTC), 1)
    except (CroniterError, ValueError, OverflowError):
        raise UsageError(f"{where}: cron {cron!r} never fires; check its day and month fields") from None


def next_times(cron: str, zone: str, now: datetime, count: int = 3) -> list[datetime]:
    it = croniter(cron, now.astimezone(ZoneInfo(zone)))
    return [it.get_next(datetime).astimezone(UTC) for _ in range(count)]


def latest_tick(cron: str, zone: str, now: datetime) -> datetime:
    """The last tick at or before ``now`` (UTC)."""
    local = now.astimezone(ZoneInfo(zone))
    it = croniter(cron, local + timedelta(microseconds=1))
    tick: datetime = it.get_prev(datetime)
    return tick.astimezone(UTC)


def describe(row: ScheduleRow, now: datetime) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "cron": row.cron, "timezone": row.timezone,
            "repository_id": row.repository_id, "ref": row.ref,
            "next": [t.isoformat() for t in next_times(row.cron, row.timezone, now)]}


def add_document_schedules(store: RunStore, name: str, document: str) -> list[dict[str, Any]]:
    """Register a stored pipeline's ``on.schedule`` under ``name`` (replacing an earlier one)."""
    from worldtree.compile.loader import load_pipeline_text
    from worldtree.gitops.generator import raw_on

    load_pipeline_text(document, name)  # a broken document is refused now, not at every tick
    crons = entries(raw_on(document, name), name)
    if not crons:
        raise UsageError(f"{name}: the document has no `on.schedule`; add `on: {{schedule: [{{cron: ...}}]}}`")
    gs = gitops_store(store)
    now = datetime.now(UTC)
    out = []
    for number, (cron, zone) in enumerate(crons, 1):
        schedule_id = gs.put_schedule(name=f"{name}#{number}", cron=cron, timezone=zone, document=document)
        row = next(r for r in gs.schedules() if r.id == schedule_id)
        out.append(describe(row, now))
    return out


def list_schedules(store: RunStore) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [describe(row, now) for row in gitops_store(store).schedules()]


class Scheduler:
    """Fires due ticks until ``stop`` is set. ``clock`` is injectable (tests)."""

    def __init__(self, store: RunStore, config: service.ServiceConfig, *, owner: str, grace_seconds: float = 60.0,
                 poll_seconds: float = 1.0, clock: Callable[[], datetime] | None = None,
                 on_run: Callable[[], None] | None = None) -> None:
        self.store = store
        self.gitops = gitops_store(store)
        self.config = config
        self.owner = owner
        self.grace = timedelta(seconds=grace_seconds)
        self.poll_seconds = poll_seconds
        self.clock = clock or (lambda: datetime.now(UTC))
        self.on_run = on_run

    def serve(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.tick()
            except StoreError as exc:
                log.error("scheduler %s: %s", self.owner, exc)
            except Exception:
                log.exception("scheduler %s: internal error", self.owner)
            stop.wait(self.poll_seconds)

    def tick(self) -> list[str]:
        """Fire every schedule whose latest tick is due and unclaimed; the runs created."""
        now = self.clock()
        fired = []
        for row in self.gitops.schedules():
            tick = latest_tick(row.cron, row.timezone, now)
            if tick < row.created_at.replace(microsecond=0) or now - tick > self.grace:
                continue
            if not self.gitops.claim_tick(row.id, tick, self.owner):
                continue  # another replica (or an earlier pass) fired it
            try:
                run_id = self.fire(row, tick)
            except WorldtreeError as exc:
                log.error("schedule %s at %s: %s", row.name, tick.isoformat(), exc)
                continue
            self.gitops.tick_run(row.id, tick, run_id)
            fired.append(run_id)
            if self.on_run is not None:
                self.on_run()
        return fired

    def fire(self, row: ScheduleRow, tick: datetime) -> str:
        env = {"CI": "true", "CI_EVENT": "schedule", "CI_SCHEDULE": row.name, "CI_SCHEDULE_TICK": tick.isoformat()}
        if row.document is not None:
            return str(service.submit(self.store, self.config, row.document, env=env, filename=row.name)["id"])
        from worldtree.gitops.checkout import Mirror
        from worldtree.gitops.generator import ci_env, find_pipeline

        repo = self.gitops.repository(repo_id=row.repository_id)
        if repo is None or not row.ref:
            raise UsageError(f"schedule {row.name}: its repository is gone")
        mirror = Mirror(self.config.data_dir, repo.provider, repo.name, repo.clone_url)
        sha = mirror.fetch(None, row.ref)
        found = find_pipeline(mirror, sha, repo)
        if found is None:
            raise UsageError(f"schedule {row.name}: {row.ref} at {sha[:12]} has no pipeline file any more")
        path, document = found
        event = GitEvent(repo.provider, "push", repo.name, ref=row.ref, sha=sha)
        workspace = Path(self.config.data_dir).resolve() / "workspaces" / f"schedule-{row.id}-{int(tick.timestamp())}"
        os.makedirs(workspace.parent, exist_ok=True)
        mirror.worktree(sha, str(workspace))
        created = service.submit(self.store, self.config, document, env={**ci_env(event, sha, "schedule"), **env},
                                 filename=f"{repo.name}/{path}", workdir=str(workspace))
        return str(created["id"])
