"""GitOps rows in the run store: repositories, deliveries (the default queue), schedules and their ticks.

A class over the SQLAlchemy ``Engine`` of a run store (``store._engine``), so the
:class:`~worldtree.store.api.RunStore` protocol does not grow. Every claim is a compare-and-set:

* a delivery is inserted once: ``(provider, delivery_id)`` is unique, a replay is an
  ``IntegrityError`` → ``False``;
* a consumer claims a delivery by ``UPDATE … WHERE id = ? AND tries = ?`` (queued, or claimed
  with an expired lease: a consumer that died is replaced, at least once);
* a commit status is claimed the same way on ``report_tries``, with ``report_after`` as its lease
  and backoff;
* a schedule tick fires once because ``(schedule_id, tick_at)`` is the primary key.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from worldtree.errors import ConflictError, StoreError
from worldtree.store.gitops_tables import git_deliveries, git_repositories, schedule_ticks, schedules
from worldtree.store.schema import reason, write_transaction
from worldtree.store.tables import runs

#: Final commit states (a retried run shows pending again), then the settled marks: ``skipped`` (no
#: token to post with) and ``gave_up`` (the API refused the post: nothing more is posted).
COMMIT_FINAL = ("success", "failure", "error")
#: Commit statuses are kept up to date for deliveries this recent (a run retried later is not re-reported).
REPORT_DAYS = 14
FINAL_REPORTS = (*COMMIT_FINAL, "skipped", "gave_up")


@dataclass(frozen=True)
class RepositoryRow:
    id: str
    provider: str
    name: str
    clone_url: str
    api_url: str | None
    ci_file: str | None
    executor: str
    webhook_secret: str  # encrypted
    status_token: str | None  # encrypted
    created_at: datetime


@dataclass(frozen=True)
class DeliveryRow:
    id: str
    provider: str
    delivery_id: str
    repository_id: str
    event: str
    payload: str
    received_at: datetime
    state: str
    tries: int
    detail: str | None
    sha: str | None
    ref: str | None
    run_id: str | None
    pipeline: str | None
    reported: str | None
    report_tries: int
    reported_attempt: int | None


@dataclass(frozen=True)
class Due:
    """A delivery whose commit status is due, with its run's state and attempt (None: no run)."""

    delivery: DeliveryRow
    run_state: str | None
    run_attempt: int | None


@dataclass(frozen=True)
class ScheduleRow:
    id: str
    name: str
    cron: str
    timezone: str
    repository_id: str | None
    ref: str | None
    sha: str | None
    document: str | None
    created_at: datetime


def _now() -> datetime:
    return datetime.now(UTC)


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


class GitopsStore:
    """Thread-safe (the engine pools connections); SQLAlchemy errors leave as :class:`StoreError`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- repositories ------------------------------------------------------------------------
    def add_repository(self, *, provider: str, name: str, clone_url: str, api_url: str | None, ci_file: str | None,
                       executor: str, webhook_secret: str, status_token: str | None) -> RepositoryRow:
        row: dict[str, Any] = {
            "id": _id("repo"), "provider": provider, "name": name, "clone_url": clone_url, "api_url": api_url,
            "ci_file": ci_file, "executor": executor, "webhook_secret": webhook_secret,
            "status_token": status_token, "created_at": _now()}
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(insert(git_repositories).values(**row))
        except IntegrityError:
            raise ConflictError(f"{provider} repository {name} is already registered; remove it first "
                                f"(`worldtree repo remove {name}`)") from None
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot register repository {name}: {reason(exc)}") from exc
        return RepositoryRow(**row)

    def repositories(self) -> list[RepositoryRow]:
        return [RepositoryRow(**r) for r in self._rows(select(git_repositories).order_by(git_repositories.c.name))]

    def repository(self, *, provider: str | None = None, name: str | None = None,
                   repo_id: str | None = None) -> RepositoryRow | None:
        query = select(git_repositories)
        if repo_id is not None:
            query = query.where(git_repositories.c.id == repo_id)
        if provider is not None:
            query = query.where(git_repositories.c.provider == provider)
        if name is not None:
            query = query.where(git_repositories.c.name == name)
        found = self._rows(query.limit(2))
        return RepositoryRow(**found[0]) if len(found) == 1 else None

    def remove_repository(self, repo_id: str) -> bool:
        with self._write("remove a repository") as conn:
            conn.execute(delete(schedules).where(schedules.c.repository_id == repo_id))
            conn.execute(delete(git_deliveries).where(git_deliveries.c.repository_id == repo_id))
            return bool(conn.execute(delete(git_repositories).where(git_repositories.c.id == repo_id)).rowcount)

    # -- deliveries (the queue) --------------------------------------------------------------
    def add_delivery(self, *, provider: str, delivery_id: str, repository_id: str, event: str, payload: str,
                     state: str = "queued", detail: str | None = None) -> str | None:
        """The new row's id; None when this delivery id was seen before (a replay)."""
        row_id = _id("dlv")
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(insert(git_deliveries).values(
                    id=row_id, provider=provider, delivery_id=delivery_id, repository_id=repository_id, event=event,
                    payload=payload, received_at=_now(), state=state, tries=0, detail=detail, report_tries=0))
        except IntegrityError:
            return None
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot store webhook delivery {delivery_id}: {reason(exc)}") from exc
        return row_id

    def delivery(self, row_id: str) -> DeliveryRow | None:
        found = self._rows(select(*_DELIVERY_COLUMNS).where(git_deliveries.c.id == row_id))
        return DeliveryRow(**found[0]) if found else None

    def deliveries(self, *, limit: int = 100) -> list[DeliveryRow]:
        query = select(*_DELIVERY_COLUMNS).order_by(git_deliveries.c.received_at.desc()).limit(limit)
        return [DeliveryRow(**r) for r in self._rows(query)]

    def claim_delivery(self, owner: str, lease_seconds: float, *, only: str | None = None,
                       older_than: float = 0.0) -> DeliveryRow | None:
        """One queued delivery (or one whose consumer's lease ran out), claimed; None when there is none.

        ``older_than``: only deliveries received at least that many seconds ago (a sweep behind a broker)."""
        now = _now()
        ready = or_(git_deliveries.c.state == "queued",
                    and_(git_deliveries.c.state == "claimed", git_deliveries.c.lease_expires_at < now))
        query = select(git_deliveries.c.id, git_deliveries.c.tries).where(ready)
        if only is not None:
            query = query.where(git_deliveries.c.id == only)
        if older_than:
            query = query.where(git_deliveries.c.received_at <= now - timedelta(seconds=older_than))
        for candidate in self._rows(query.order_by(git_deliveries.c.received_at).limit(20)):
            with self._write("claim a delivery") as conn:
                won = conn.execute(update(git_deliveries).where(
                    git_deliveries.c.id == candidate["id"], git_deliveries.c.tries == candidate["tries"], ready,
                ).values(state="claimed", owner=owner, tries=candidate["tries"] + 1,
                         lease_expires_at=now + timedelta(seconds=lease_seconds))).rowcount
            if won:
                return self.delivery(candidate["id"])
        return None

    def finish_delivery(self, row_id: str, tries: int, *, state: str, detail: str | None = None,
                        sha: str | None = None, ref: str | None = None, run_id: str | None = None,
                        pipeline: str | None = None) -> bool:
        """End a claim (fenced by ``tries``): done with a run, skipped, or failed with why."""
        with self._write("finish a delivery") as conn:
            return bool(conn.execute(update(git_deliveries).where(
                git_deliveries.c.id == row_id, git_deliveries.c.tries == tries,
                git_deliveries.c.state == "claimed").values(
                state=state, detail=detail, sha=sha, ref=ref, run_id=run_id, pipeline=pipeline, owner=None,
                lease_expires_at=None)).rowcount)

    def run_for_workdir(self, workdir: str) -> str | None:
        """The run made in ``workdir`` (a delivery's workspace path is unique to it), if any."""
        found = self._rows(select(runs.c.id).where(runs.c.workdir == workdir).limit(1))
        return str(found[0]["id"]) if found else None

    # -- commit statuses ---------------------------------------------------------------------
    def unreported(self, *, limit: int = 50) -> list[Due]:
        """Deliveries whose commit should show something new, due now: nothing posted yet, a run that ended
        since pending was posted, or a run retried since its result was posted (another attempt); and those
        that failed before a run with a known commit (no run: the pipeline file was broken)."""
        now = _now()
        has_run = git_deliveries.c.run_id.is_not(None)
        failed_early = and_(git_deliveries.c.run_id.is_(None), git_deliveries.c.state == "failed",
                            git_deliveries.c.sha.is_not(None))
        reported, under_way = git_deliveries.c.reported, runs.c.state.in_(("pending", "running"))
        news = or_(reported.is_(None),
                   and_(reported == "pending", runs.c.state.is_not(None), ~under_way),  # it ended
                   and_(reported.in_(COMMIT_FINAL), runs.c.state.is_not(None),  # it was retried
                        or_(under_way, git_deliveries.c.reported_attempt != runs.c.attempt)))
        query = (select(*_DELIVERY_COLUMNS, runs.c.state.label("run_state"), runs.c.attempt.label("run_attempt"))
                 .outerjoin(runs, runs.c.id == git_deliveries.c.run_id)
                 .where(git_deliveries.c.received_at >= now - timedelta(days=REPORT_DAYS),  # indexed: a bounded scan
                        or_(and_(has_run, runs.c.id.is_not(None)), failed_early), news,
                        or_(git_deliveries.c.report_after.is_(None), git_deliveries.c.report_after <= now))
                 .order_by(git_deliveries.c.received_at).limit(limit))
        out = []
        for row in self._rows(query):
            state, attempt = row.pop("run_state"), row.pop("run_attempt")
            out.append(Due(DeliveryRow(**row), state, attempt))
        return out

    def claim_report(self, row_id: str, report_tries: int, lease_seconds: float) -> bool:
        """Take the right to post this delivery's next status (its lease is ``report_after``)."""
        with self._write("claim a commit status") as conn:
            return bool(conn.execute(update(git_deliveries).where(
                git_deliveries.c.id == row_id, git_deliveries.c.report_tries == report_tries).values(
                report_tries=report_tries + 1,
                report_after=_now() + timedelta(seconds=lease_seconds))).rowcount)

    def reported(self, row_id: str, state: str, attempt: int | None = None) -> None:
        with self._write("record a commit status") as conn:
            conn.execute(update(git_deliveries).where(git_deliveries.c.id == row_id).values(
                reported=state, reported_attempt=attempt, report_tries=0, report_after=None))

    def report_failed(self, row_id: str, retry_in: float, give_up: bool) -> None:
        """A post failed: try again in ``retry_in`` s (the claim already counted the try), or give up."""
        values: dict[str, Any] = {"report_after": _now() + timedelta(seconds=retry_in)}
        if give_up:
            values["reported"] = "gave_up"
        with self._write("record a failed commit status") as conn:
            conn.execute(update(git_deliveries).where(git_deliveries.c.id == row_id).values(**values))

    # -- schedules ---------------------------------------------------------------------------
    def put_schedule(self, *, name: str, cron: str, timezone: str, repository_id: str | None = None,
                     ref: str | None = None, sha: str | None = None, document: str | None = None) -> str:
        """Create or replace the schedule called ``name``; its id."""
        with self._write("store a schedule") as conn:
            found = conn.execute(select(schedules.c.id).where(schedules.c.name == name)).first()
            values = {"cron": cron, "timezone": timezone, "repository_id": repository_id, "ref": ref, "sha": sha,
                      "document": document}
            if found is not None:
                conn.execute(update(schedules).where(schedules.c.id == found[0]).values(**values))
                return str(found[0])
            schedule_id = _id("sch")
            conn.execute(insert(schedules).values(id=schedule_id, name=name, created_at=_now(), **values))
            return schedule_id

    def drop_schedules(self, *, repository_id: str, keep: list[str]) -> None:
        """Forget a repository's schedules its pipeline no longer declares."""
        with self._write("drop schedules") as conn:
            conn.execute(delete(schedules).where(schedules.c.repository_id == repository_id,
                                                 schedules.c.name.not_in(keep)))

    def schedules(self) -> list[ScheduleRow]:
        return [ScheduleRow(**r) for r in self._rows(select(schedules).order_by(schedules.c.name))]

    def claim_tick(self, schedule_id: str, tick_at: datetime, owner: str) -> bool:
        """True for exactly one caller per (schedule, tick), across every replica."""
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(insert(schedule_ticks).values(schedule_id=schedule_id, tick_at=tick_at,
                                                           fired_at=_now(), owner=owner))
        except IntegrityError:
            return False
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot record a schedule tick: {reason(exc)}") from exc
        return True

    def tick_run(self, schedule_id: str, tick_at: datetime, run_id: str) -> None:
        with self._write("record a schedule's run") as conn:
            conn.execute(update(schedule_ticks).where(schedule_ticks.c.schedule_id == schedule_id,
                                                      schedule_ticks.c.tick_at == tick_at).values(run_id=run_id))

    def ticks(self, schedule_id: str) -> list[dict[str, Any]]:
        return self._rows(select(schedule_ticks).where(schedule_ticks.c.schedule_id == schedule_id)
                          .order_by(schedule_ticks.c.tick_at))

    # -- plumbing ------------------------------------------------------------------------------
    def _rows(self, query: Any) -> list[dict[str, Any]]:
        try:
            with self.engine.connect() as conn:
                return [dict(r._mapping) for r in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read gitops rows: {reason(exc)}") from exc

    def _write(self, action: str) -> Any:
        return _Write(self.engine, action)


class _Write:
    """``with``: a write transaction whose SQLAlchemy errors leave as StoreError naming ``action``."""

    def __init__(self, engine: Engine, action: str) -> None:
        self._cm = write_transaction(engine)
        self.action = action

    def __enter__(self) -> Any:
        try:
            return self._cm.__enter__()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot {self.action}: {reason(exc)}") from exc

    def __exit__(self, *exc: Any) -> bool:
        try:
            return bool(self._cm.__exit__(*exc))
        except SQLAlchemyError as error:
            raise StoreError(f"cannot {self.action}: {reason(error)}") from error


_DELIVERY_COLUMNS = [git_deliveries.c[name] for name in DeliveryRow.__dataclass_fields__]
