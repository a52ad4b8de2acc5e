"""GitOps tables (migration 0007): repositories, webhook deliveries (the default queue), schedules.

On the shared :data:`worldtree.store.tables.metadata`; the migration spells the same columns out.
Secrets (``webhook_secret``, ``status_token``) hold Fernet tokens, never the values.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, Text

from worldtree.store.tables import UtcDateTime, metadata

git_repositories = Table(
    "git_repositories", metadata,
    Column("id", String(40), primary_key=True),
    Column("provider", String(20), nullable=False),  # github | gitlab | gitea
    Column("name", String(300), nullable=False),  # owner/name (GitLab: the project's path)
    Column("clone_url", Text, nullable=False),
    Column("api_url", Text),  # the status API's base URL; None: the provider's public one
    Column("ci_file", Text),  # None: ci.yaml, then .worldtree.yaml
    Column("executor", String(20), nullable=False),  # local | agents | argo
    Column("webhook_secret", Text, nullable=False),  # Fernet token
    Column("status_token", Text),  # Fernet token
    Column("created_at", UtcDateTime, nullable=False),
    Index("ux_git_repositories_provider_name", "provider", "name", unique=True),
)

git_deliveries = Table(
    "git_deliveries", metadata,
    Column("id", String(40), primary_key=True),
    Column("provider", String(20), nullable=False),
    Column("delivery_id", String(200), nullable=False),  # X-GitHub-Delivery and the others' equivalents
    Column("repository_id", String(40), ForeignKey("git_repositories.id", ondelete="CASCADE"), nullable=False),
    Column("event", String(50), nullable=False),  # push | pull_request | create | ping | tag_push ...
    Column("payload", Text, nullable=False),  # the raw JSON body
    Column("received_at", UtcDateTime, nullable=False),
    Column("state", String(20), nullable=False),  # queued | claimed | done | skipped | failed
    Column("owner", String(300)),  # the consumer holding the claim
    Column("lease_expires_at", UtcDateTime),
    Column("tries", Integer, nullable=False, server_default="0"),
    Column("detail", Text),  # why it was skipped or failed
    Column("sha", String(64)),
    Column("ref", Text),
    Column("run_id", String(40)),  # the run it created
    Column("pipeline", Text),  # that run's pipeline name (the status context)
    Column("reported", String(20)),  # the last commit state posted: pending | success | failure | error
    Column("report_tries", Integer, nullable=False, server_default="0"),
    Column("report_after", UtcDateTime),  # backoff: the next report not before
    Column("reported_attempt", Integer),  # the run's attempt that status was about (a retry is news)
    Index("ux_git_deliveries_provider_delivery", "provider", "delivery_id", unique=True),
    Index("ix_git_deliveries_state", "state"),
    Index("ix_git_deliveries_received_at", "received_at"),  # the reporter looks at recent ones only
)

schedules = Table(
    "schedules", metadata,
    Column("id", String(40), primary_key=True),
    Column("name", Text, nullable=False),  # "<repo>:<pipeline>#<n>" or the name given
    Column("cron", String(200), nullable=False),
    Column("timezone", String(100), nullable=False),
    Column("repository_id", String(40), ForeignKey("git_repositories.id", ondelete="CASCADE")),
    Column("ref", Text),
    Column("sha", String(64)),
    Column("document", Text),  # a stored pipeline (no repository): the document itself
    Column("created_at", UtcDateTime, nullable=False),
    Index("ux_schedules_name", "name", unique=True),
)

schedule_ticks = Table(
    "schedule_ticks", metadata,
    Column("schedule_id", String(40), ForeignKey("schedules.id", ondelete="CASCADE"), primary_key=True),
    Column("tick_at", UtcDateTime, primary_key=True),
    Column("fired_at", UtcDateTime, nullable=False),
    Column("owner", String(300), nullable=False),
    Column("run_id", String(40)),
)
