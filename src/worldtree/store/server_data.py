"""Rows of the server's own data (migration 0006): encrypted secrets, stored pipelines, artifacts.

Each class takes the SQLAlchemy engine of a run store (:func:`engine_of`) and does plain row work;
what the rows mean (encryption, validation, files) is the application layer's. Driver errors leave
as :class:`~worldtree.errors.StoreError`; a name taken twice as :class:`~worldtree.errors.ConflictError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from worldtree.errors import ConflictError, StoreError
from worldtree.store.api import RunStore
from worldtree.store.schema import reason, write_transaction
from worldtree.store.server_data_tables import artifacts, pipeline_runs, pipelines, secrets

T = TypeVar("T")


def engine_of(store: RunStore) -> Engine:
    """The SQLAlchemy engine behind ``store`` (both store kinds expose it as ``_engine``)."""
    engine: Engine = store._engine  # type: ignore[attr-defined]
    return engine


def _now() -> datetime:
    return datetime.now(UTC)


class _Rows:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _write(self, action: str) -> Iterator[Connection]:
        try:
            with write_transaction(self.engine) as conn:
                yield conn
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise StoreError(f"server data: cannot {action}: {reason(exc)}") from exc

    def _read(self, action: str, body: Callable[[Connection], T]) -> T:
        try:
            with self.engine.connect() as conn:
                return body(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"server data: cannot {action}: {reason(exc)}") from exc


@dataclass(frozen=True)
class SecretRow:
    name: str
    ciphertext: str
    created_at: datetime
    updated_at: datetime


class SecretRows(_Rows):
    def put(self, name: str, ciphertext: str) -> bool:
        """Insert or replace; True when the name is new."""
        now = _now()
        for _ in range(3):  # two writers of one new name: the loser's insert fails, its update then wins
            try:
                with self._write("store a secret") as conn:
                    changed = conn.execute(update(secrets).where(secrets.c.name == name)
                                           .values(ciphertext=ciphertext, updated_at=now)).rowcount
                    if changed:
                        return False
                    conn.execute(insert(secrets).values(name=name, ciphertext=ciphertext, created_at=now,
                                                        updated_at=now))
                    return True
            except IntegrityError:
                continue
        raise StoreError(f"server data: cannot store secret {name}: it changed under three writes in a row")

    def rows(self, names: list[str] | None = None) -> list[SecretRow]:
        query = select(secrets).order_by(secrets.c.name)
        if names is not None:
            query = query.where(secrets.c.name.in_(names))
        return self._read("read secrets", lambda conn: [SecretRow(r.name, r.ciphertext, r.created_at, r.updated_at)
                                                        for r in conn.execute(query)])

    def delete(self, name: str) -> bool:
        with self._write("delete a secret") as conn:
            return bool(conn.execute(delete(secrets).where(secrets.c.name == name)).rowcount)


@dataclass(frozen=True)
class PipelineRow:
    name: str
    document: str
    created_at: datetime
    updated_at: datetime


class PipelineRows(_Rows):
    def create(self, name: str, document: str) -> PipelineRow:
        now = _now()
        try:
            with self._write("store a pipeline") as conn:
                conn.execute(insert(pipelines).values(name=name, document=document, created_at=now, updated_at=now))
        except IntegrityError:
            raise ConflictError(f"a pipeline named {name!r} exists; PUT /api/v1/pipelines/{name} replaces it") from None
        return PipelineRow(name, document, now, now)

    def replace(self, name: str, document: str) -> bool:
        with self._write("update a pipeline") as conn:
            return bool(conn.execute(update(pipelines).where(pipelines.c.name == name)
                                     .values(document=document, updated_at=_now())).rowcount)

    def get(self, name: str) -> PipelineRow | None:
        def body(conn: Connection) -> PipelineRow | None:
            row = conn.execute(select(pipelines).where(pipelines.c.name == name)).first()
            return PipelineRow(row.name, row.document, row.created_at, row.updated_at) if row else None
        return self._read("read a pipeline", body)

    def page(self, offset: int, limit: int) -> tuple[list[PipelineRow], int]:
        def body(conn: Connection) -> tuple[list[PipelineRow], int]:
            total = conn.execute(select(func.count()).select_from(pipelines)).scalar_one()
            rows = conn.execute(select(pipelines).order_by(pipelines.c.name).offset(offset).limit(limit))
            return [PipelineRow(r.name, r.document, r.created_at, r.updated_at) for r in rows], int(total)
        return self._read("list pipelines", body)

    def delete(self, name: str) -> bool:
        with self._write("delete a pipeline") as conn:
            conn.execute(delete(pipeline_runs).where(pipeline_runs.c.pipeline == name))
            return bool(conn.execute(delete(pipelines).where(pipelines.c.name == name)).rowcount)

    def link_run(self, name: str, run_id: str) -> None:
        with self._write("link a run to its pipeline") as conn:
            conn.execute(insert(pipeline_runs).values(run_id=run_id, pipeline=name, created_at=_now()))

    def run_stats(self, name: str) -> tuple[dict[str, int], tuple[str, str, datetime] | None]:
        """The pipeline's runs per state, and its newest run (id, state, created_at)."""
        from worldtree.store.tables import runs

        joined = pipeline_runs.join(runs, runs.c.id == pipeline_runs.c.run_id)
        mine = pipeline_runs.c.pipeline == name

        def body(conn: Connection) -> tuple[dict[str, int], tuple[str, str, datetime] | None]:
            counts = {r[0]: int(r[1]) for r in conn.execute(
                select(runs.c.state, func.count()).select_from(joined).where(mine).group_by(runs.c.state))}
            last = conn.execute(select(runs.c.id, runs.c.state, runs.c.created_at).select_from(joined).where(mine)
                                .order_by(runs.c.created_at.desc()).limit(1)).first()
            return counts, (last.id, last.state, last.created_at) if last else None
        return self._read("read a pipeline's runs", body)

    def active_run_ids(self, name: str) -> list[str]:
        """The pipeline's runs that are queued or running (``stop`` cancels these)."""
        from worldtree.store.tables import runs

        query = (select(runs.c.id).select_from(pipeline_runs.join(runs, runs.c.id == pipeline_runs.c.run_id))
                 .where(pipeline_runs.c.pipeline == name, runs.c.state.in_(("pending", "running"))))
        return self._read("read a pipeline's runs", lambda conn: [r.id for r in conn.execute(query)])

    def runs_per_pipeline(self, names: list[str]) -> dict[str, int]:
        query = (select(pipeline_runs.c.pipeline, func.count()).where(pipeline_runs.c.pipeline.in_(names))
                 .group_by(pipeline_runs.c.pipeline))
        return self._read("count a pipeline's runs", lambda conn: {r[0]: int(r[1]) for r in conn.execute(query)})


@dataclass(frozen=True)
class ArtifactRow:
    id: str
    run_id: str
    attempt: int
    job: str
    path: str
    sha256: str
    size: int
    created_at: datetime
    expires_at: datetime | None


def _artifact(row: Any) -> ArtifactRow:
    return ArtifactRow(row.id, row.run_id, row.attempt, row.job, row.path, row.sha256, int(row.size),
                       row.created_at, row.expires_at)


class ArtifactRows(_Rows):
    def add(self, rows: list[ArtifactRow]) -> None:
        if not rows:
            return
        with self._write("record artifacts") as conn:
            conn.execute(insert(artifacts), [row.__dict__ for row in rows])

    def of_run(self, run_id: str, job: str | None = None) -> list[ArtifactRow]:
        query = select(artifacts).where(artifacts.c.run_id == run_id)
        if job is not None:
            query = query.where(artifacts.c.job == job)
        query = query.order_by(artifacts.c.job, artifacts.c.attempt, artifacts.c.path)
        return self._read("list artifacts", lambda conn: [_artifact(r) for r in conn.execute(query)])

    def get(self, artifact_id: str) -> ArtifactRow | None:
        def body(conn: Connection) -> ArtifactRow | None:
            row = conn.execute(select(artifacts).where(artifacts.c.id == artifact_id)).first()
            return _artifact(row) if row else None
        return self._read("read an artifact", body)

    def delete_expired(self, now: datetime) -> list[ArtifactRow]:
        """Delete the rows expired at ``now``; the deleted rows (their blobs may now be unreferenced)."""
        with self._write("purge artifacts") as conn:
            gone = [_artifact(r) for r in conn.execute(select(artifacts).where(artifacts.c.expires_at <= now))]
            if gone:
                conn.execute(delete(artifacts).where(artifacts.c.id.in_([g.id for g in gone])))
            return gone

    def referenced(self, digests: list[str]) -> set[str]:
        """Which of ``digests`` some artifact row still points at."""
        if not digests:
            return set()
        query = select(artifacts.c.sha256).where(artifacts.c.sha256.in_(digests)).distinct()
        return self._read("read artifact digests", lambda conn: {r[0] for r in conn.execute(query)})

