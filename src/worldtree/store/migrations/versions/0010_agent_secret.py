"""Agents: a per-agent session secret (issue 9 hardening), stored as a SHA-256 hex digest.

Register issues a random secret, returned once; every later agent RPC must present it, so a holder
of the shared token cannot act as another agent. Only the digest is stored (the column in
:mod:`worldtree.store.agents_tables`); NULL for agents registered before this revision (they
register again: the server answers PERMISSION_DENIED until they do).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("agents", sa.Column("secret_hash", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("secret_hash")
