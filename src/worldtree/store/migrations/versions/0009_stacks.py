"""Stacks (issue 12): applied state per (stack, env, phase), leases, agent memory, skills.

Tables in :mod:`worldtree.store.stacks_tables`.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stack_state",
        sa.Column("stack", sa.String(200), primary_key=True),
        sa.Column("env", sa.String(200), primary_key=True),
        sa.Column("phase", sa.String(20), primary_key=True),
        sa.Column("state_json", sa.Text, nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("run_id", sa.String(40)),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "stack_leases",
        sa.Column("key", sa.String(450), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "stack_memory",
        sa.Column("stack", sa.String(200), primary_key=True),
        sa.Column("env", sa.String(200), primary_key=True),
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value_json", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "skill_sources",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("uri", sa.Text, nullable=False),
        sa.Column("ref", sa.String(200)),
        sa.Column("path", sa.Text),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "skills",
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("origin", sa.Text, nullable=False),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for name in ("skills", "skill_sources", "stack_memory", "stack_leases", "stack_state"):
        op.drop_table(name)
