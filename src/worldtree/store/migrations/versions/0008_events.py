"""The server's event log (issue 8): run and node state changes with ids in commit order.

events: ``id`` (the SSE ``id:`` and ``Last-Event-ID``), ``at``, ``kind`` (``run.queued``,
``run.started``, ``run.finished``, ``node.state``, later ``agent.*``), ``run_id`` (none for
events that are not a run's) and ``data_json`` (the rest of the payload).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("run_id", sa.String(40)),
        sa.Column("data_json", sa.Text, nullable=False),
    )
    op.create_index("ix_events_run_id", "events", ["run_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_events_run_id", table_name="events")
    op.drop_table("events")
