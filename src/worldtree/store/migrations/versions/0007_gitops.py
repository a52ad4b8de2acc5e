"""GitOps (issue 10): repositories, webhook deliveries, schedules.

git_repositories: one row per registered repository (provider + ``owner/name``), its clone and API
URLs, pipeline file, executor, and the webhook secret and status token *encrypted* (Fernet).
git_deliveries: every accepted webhook delivery; ``(provider, delivery_id)`` is unique so a replay
is refused by the database itself. It is also the default queue (``state``, claim ``owner`` and
``lease_expires_at``) and remembers the run it created and the last commit status reported.
schedules / schedule_ticks: ``on.schedule`` crons; a tick fires once because ``(schedule_id,
tick_at)`` is unique across replicas.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "git_repositories",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("clone_url", sa.Text, nullable=False),
        sa.Column("api_url", sa.Text),
        sa.Column("ci_file", sa.Text),
        sa.Column("executor", sa.String(20), nullable=False),
        sa.Column("webhook_secret", sa.Text, nullable=False),
        sa.Column("status_token", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ux_git_repositories_provider_name", "git_repositories", ["provider", "name"], unique=True)
    op.create_table(
        "git_deliveries",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("delivery_id", sa.String(200), nullable=False),
        sa.Column("repository_id", sa.String(40), sa.ForeignKey("git_repositories.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("event", sa.String(50), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("owner", sa.String(300)),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True)),
        sa.Column("tries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("detail", sa.Text),
        sa.Column("sha", sa.String(64)),
        sa.Column("ref", sa.Text),
        sa.Column("run_id", sa.String(40)),
        sa.Column("pipeline", sa.Text),
        sa.Column("reported", sa.String(20)),
        sa.Column("report_tries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("report_after", sa.DateTime(timezone=True)),
        sa.Column("reported_attempt", sa.Integer),
    )
    op.create_index("ux_git_deliveries_provider_delivery", "git_deliveries", ["provider", "delivery_id"],
                    unique=True)
    op.create_index("ix_git_deliveries_state", "git_deliveries", ["state"])
    op.create_index("ix_git_deliveries_received_at", "git_deliveries", ["received_at"])
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("cron", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(100), nullable=False),
        sa.Column("repository_id", sa.String(40), sa.ForeignKey("git_repositories.id", ondelete="CASCADE")),
        sa.Column("ref", sa.Text),
        sa.Column("sha", sa.String(64)),
        sa.Column("document", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ux_schedules_name", "schedules", ["name"], unique=True)
    op.create_table(
        "schedule_ticks",
        sa.Column("schedule_id", sa.String(40), sa.ForeignKey("schedules.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("tick_at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("owner", sa.String(300), nullable=False),
        sa.Column("run_id", sa.String(40)),
    )


def downgrade() -> None:
    op.drop_table("schedule_ticks")
    op.drop_index("ux_schedules_name", table_name="schedules")
    op.drop_table("schedules")
    op.drop_index("ix_git_deliveries_received_at", table_name="git_deliveries")
    op.drop_index("ix_git_deliveries_state", table_name="git_deliveries")
    op.drop_index("ux_git_deliveries_provider_delivery", table_name="git_deliveries")
    op.drop_table("git_deliveries")
    op.drop_index("ux_git_repositories_provider_name", table_name="git_repositories")
    op.drop_table("git_repositories")
