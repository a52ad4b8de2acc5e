"""The server's audit log (issue 8): every mutating API call, who made it, when, from where.

audit_log: ``at``, ``actor`` (a token id, or ``anonymous`` without authentication), its ``role``,
the ``action`` (method and route template), the ``target`` (the run or token id in the path),
the response ``status`` and the ``client`` address.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("role", sa.String(20)),
        sa.Column("action", sa.String(200), nullable=False),
        sa.Column("target", sa.Text),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("client", sa.String(100)),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
