"""Leases, fencing, cancel requests and database-assigned log order (issue 7).

runs: ``log_seq`` (the per-run log counter), ``fence`` (+1 per attempt claim), the cancel request,
``graph_version``. attempts: ``owner``, ``token``, ``lease_expires_at``, ``scope_deadlines_json``.
node_states: a claim (``owner``, ``lease_expires_at``, ``token``), ``deadline_at``, ``retry_at``.
logs: ``(run_id, seq)`` becomes unique. Old rows are backfilled so an old store reads and retries.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)

# An old running attempt keeps the 30 s its heartbeat promised readers.
_LEASE_FROM_HEARTBEAT = {
    "sqlite": "UPDATE attempts SET lease_expires_at = strftime('%Y-%m-%d %H:%M:%f000', heartbeat_at, '+30 seconds')",
    "postgresql": "UPDATE attempts SET lease_expires_at = heartbeat_at + interval '30 seconds'",
}


def upgrade() -> None:
    op.add_column("runs", sa.Column("log_seq", sa.Integer, nullable=False, server_default="0"))
    op.add_column("runs", sa.Column("fence", sa.Integer, nullable=False, server_default="0"))
    op.add_column("runs", sa.Column("cancel_requested_at", _TS))
    op.add_column("runs", sa.Column("cancel_reason", sa.Text))
    op.add_column("runs", sa.Column("graph_version", sa.Integer, nullable=False, server_default="1"))
    op.add_column("attempts", sa.Column("owner", sa.String(300)))
    op.add_column("attempts", sa.Column("token", sa.Integer, nullable=False, server_default="0"))
    op.add_column("attempts", sa.Column("lease_expires_at", _TS))
    op.add_column("attempts", sa.Column("scope_deadlines_json", sa.Text))
    op.add_column("node_states", sa.Column("owner", sa.String(300)))
    op.add_column("node_states", sa.Column("lease_expires_at", _TS))
    op.add_column("node_states", sa.Column("token", sa.Integer))
    op.add_column("node_states", sa.Column("deadline_at", _TS))
    op.add_column("node_states", sa.Column("retry_at", _TS))

    bind = op.get_bind()
    # Each old attempt was its own claim: its number is its token, the run's attempt its fence.
    op.execute("UPDATE runs SET fence = attempt, log_seq = coalesce((SELECT max(seq) FROM logs "
               "WHERE logs.run_id = runs.id), 0)")
    op.execute("UPDATE attempts SET token = number, owner = " + _owner(bind.dialect.name))
    op.execute(_LEASE_FROM_HEARTBEAT[bind.dialect.name])
    # A kill -9 and a retry could make two writers of one run reuse seqs: renumber those runs.
    if bind.exec_driver_sql("SELECT 1 FROM logs GROUP BY run_id, seq HAVING count(*) > 1 LIMIT 1").first():
        op.execute("UPDATE logs SET seq = (SELECT r.n FROM (SELECT id, row_number() OVER (PARTITION BY run_id "
                   "ORDER BY seq, id) AS n FROM logs) AS r WHERE r.id = logs.id)")
        op.execute("UPDATE runs SET log_seq = coalesce((SELECT max(seq) FROM logs WHERE logs.run_id = runs.id), 0)")
    op.drop_index("ix_logs_run_seq", table_name="logs")
    op.create_index("ux_logs_run_seq", "logs", ["run_id", "seq"], unique=True)


def _owner(dialect: str) -> str:
    return "pid || '@' || hostname" if dialect == "sqlite" else "pid::text || '@' || hostname"


def downgrade() -> None:
    op.drop_index("ux_logs_run_seq", table_name="logs")
    op.create_index("ix_logs_run_seq", "logs", ["run_id", "seq"])
    for table, columns in (("node_states", ("retry_at", "deadline_at", "token", "lease_expires_at", "owner")),
                           ("attempts", ("scope_deadlines_json", "lease_expires_at", "token", "owner")),
                           ("runs", ("graph_version", "cancel_reason", "cancel_requested_at", "fence", "log_seq"))):
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.drop_column(column)
