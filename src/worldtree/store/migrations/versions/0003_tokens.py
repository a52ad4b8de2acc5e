"""API tokens of the server (issue 8): who may read, submit and administer.

api_tokens: a public ``id``, a ``name``, a ``role`` (viewer, maintainer, admin), the SHA-256 of
the secret (the token itself is shown once and never stored), creation, expiry and revocation.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS),
        sa.Column("revoked_at", _TS),
    )
    op.create_index("ux_api_tokens_secret_hash", "api_tokens", ["secret_hash"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_api_tokens_secret_hash", table_name="api_tokens")
    op.drop_table("api_tokens")
