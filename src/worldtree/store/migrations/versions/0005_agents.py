"""Agents (issue 9): registered agents, the jobs they claim, the node tasks dispatched to them.

agents: one row per agent (labels, capacity, host info, metrics, last heartbeat). agent_jobs: a
job of a run attempt as an agent claims it (state, the agent, its lease and fencing token, the
last log line stored). agent_tasks: each dispatch of a node of that job and how it ended.
agent_log_lines: the lines agents sent, keyed by (job, line number) so a resend is no duplicate.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("draining", sa.Integer, nullable=False, server_default="0"),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("metrics", sa.Text, nullable=False, server_default="{}"),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("offline_since", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "agent_jobs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("job", sa.Text, nullable=False),
        sa.Column("selector", sa.Text),
        sa.Column("graph", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("agent_id", sa.String(40)),
        sa.Column("lease_token", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("acked_line", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True)),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_agent_jobs_state", "agent_jobs", ["state"])
    op.create_index("ix_agent_jobs_run_id", "agent_jobs", ["run_id"])
    op.create_table(
        "agent_tasks",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("job_id", sa.String(40), sa.ForeignKey("agent_jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("node", sa.Text, nullable=False),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("env", sa.Text, nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("try_number", sa.Integer, nullable=False),
        sa.Column("workdir", sa.Text),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("stop_reason", sa.Text),
        sa.Column("exit_code", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("stopped", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_agent_tasks_job_id", "agent_tasks", ["job_id"])
    op.create_index("ix_agent_tasks_state", "agent_tasks", ["state"])
    op.create_table(
        "agent_log_lines",
        sa.Column("job_id", sa.String(40), sa.ForeignKey("agent_jobs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("line", sa.BigInteger, primary_key=True),
        sa.Column("task_id", sa.String(40), nullable=False),
        sa.Column("stream", sa.String(16), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("agent_log_lines")
    op.drop_index("ix_agent_tasks_state", table_name="agent_tasks")
    op.drop_index("ix_agent_tasks_job_id", table_name="agent_tasks")
    op.drop_table("agent_tasks")
    op.drop_index("ix_agent_jobs_run_id", table_name="agent_jobs")
    op.drop_index("ix_agent_jobs_state", table_name="agent_jobs")
    op.drop_table("agent_jobs")
    op.drop_table("agents")
