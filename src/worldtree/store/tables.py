"""The run store's tables (SQLAlchemy Core). Import only from code that already needs SQLAlchemy.

Changing a table here needs a new revision in ``migrations/versions`` (and ``HEAD`` in
``worldtree.store.schema``): revisions spell their tables out instead of importing these, so
old revisions keep meaning what they meant.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.types import TypeEngine

from worldtree.store.rows import utc_param, utc_value


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out on every database.

    PostgreSQL stores ``timestamptz`` (values come back normalised to UTC). SQLite has no time
    type: values are stored as ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC text (SQLAlchemy's own format,
    so they sort), formatted here with C-speed ``isoformat`` rather than SQLAlchemy's per-value
    processor, which was a third of the writer's flush time.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        return utc_param(value, dialect.name == "sqlite")

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return utc_value(value)


metadata = MetaData()

runs = Table(
    "runs", metadata,
    Column("id", String(40), primary_key=True),
    Column("name", Text, nullable=False),
    Column("source", Text),
    Column("workdir", Text, nullable=False),
    Column("state", String(20), nullable=False),
    Column("attempt", Integer, nullable=False, default=0),
    Column("created_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
    Column("graph_json", Text, nullable=False),
    Column("options_json", Text, nullable=False),
    Column("log_seq", Integer, nullable=False, server_default="0"),  # the last log seq handed out
    Column("fence", Integer, nullable=False, server_default="0"),  # +1 per attempt claim
    Column("cancel_requested_at", UtcDateTime),
    Column("cancel_reason", Text),
    Column("graph_version", Integer, nullable=False, server_default="1"),
    Index("ix_runs_created_at", "created_at"),
)

attempts = Table(
    "attempts", metadata,
    Column("run_id", String(40), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("state", String(20), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("pid", Integer, nullable=False),
    Column("hostname", String(255), nullable=False),
    Column("heartbeat_at", UtcDateTime, nullable=False),
    Column("owner", String(300)),  # "pid@host"
    Column("token", Integer, nullable=False, server_default="0"),  # runs.fence at claim
    Column("lease_expires_at", UtcDateTime),
    Column("scope_deadlines_json", Text),  # {scope_id: ISO wall-clock deadline}
)

node_states = Table(
    "node_states", metadata,
    Column("run_id", String(40), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("node", Text, primary_key=True),
    Column("state", String(20), nullable=False),
    Column("started_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
    Column("exit_code", Integer),
    Column("error", Text),
    Column("reason", Text),
    Column("try_number", Integer, nullable=False, default=1),
    Column("owner", String(300)),  # a claim by a server/agent (claim_node)
    Column("lease_expires_at", UtcDateTime),
    Column("token", Integer),
    Column("deadline_at", UtcDateTime),
    Column("retry_at", UtcDateTime),
)

logs = Table(
    "logs", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("run_id", String(40), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("node", Text, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("ts", UtcDateTime, nullable=False),
    Column("stream", String(20), nullable=False),
    Column("line", Text, nullable=False),
    Index("ux_logs_run_seq", "run_id", "seq", unique=True),
    Index("ix_logs_run_node", "run_id", "node"),
)

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", String(40), primary_key=True),
    Column("name", Text, nullable=False),
    Column("role", String(20), nullable=False),  # viewer | maintainer | admin
    Column("secret_hash", String(64), nullable=False),  # SHA-256 hex of the token; the token is never stored
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime),
    Column("revoked_at", UtcDateTime),
    Index("ux_api_tokens_secret_hash", "secret_hash", unique=True),
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(100), nullable=False),  # a token id, or "anonymous" (no authentication)
    Column("role", String(20)),
    Column("action", String(200), nullable=False),  # "POST /api/v1/runs/{run_id}/cancel"
    Column("target", Text),  # the run or token id in the path
    Column("status", Integer, nullable=False),
    Column("client", String(100)),
    Index("ix_audit_log_at", "at"),
)
