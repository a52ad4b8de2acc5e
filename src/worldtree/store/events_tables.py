"""The server's event log (migration 0008): what ``GET /api/v1/events`` and ``/runs/{id}/events`` stream.

One row per event, ``id`` increasing in commit order (writers serialize on an advisory lock on
PostgreSQL; SQLite has one writer), so a follower that read up to ``id`` N and asks for ``id > N``
never misses one that committed later. ``kind`` is ``run.queued``, ``run.started``,
``run.finished``, ``node.state`` (the agents issue adds ``agent.*``); ``data_json`` holds the
rest of the payload. No foreign key to runs (agent events have no run): ``DELETE /runs/{id}`` deletes a
run's events itself (:func:`worldtree.app.events.forget_run`).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from worldtree.store.tables import UtcDateTime, metadata

events = Table(
    "events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("run_id", String(40)),
    Column("data_json", Text, nullable=False),
    Index("ix_events_run_id", "run_id", "id"),
)
