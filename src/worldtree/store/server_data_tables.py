"""Tables of the server's own data (migration 0006): secrets, stored pipelines, artifacts.

Kept apart from :mod:`worldtree.store.tables` (the run store's tables) on the shared ``metadata``
so that the run store's contract does not grow with every server feature.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text

from worldtree.store.tables import UtcDateTime, metadata

secrets = Table(
    "secrets", metadata,
    Column("name", String(200), primary_key=True),
    Column("ciphertext", Text, nullable=False),  # a Fernet token: the value never reaches the database
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

pipelines = Table(
    "pipelines", metadata,
    Column("name", String(200), primary_key=True),
    Column("document", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

pipeline_runs = Table(
    "pipeline_runs", metadata,
    Column("run_id", String(40), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("pipeline", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_pipeline_runs_pipeline", "pipeline"),
)

artifacts = Table(
    "artifacts", metadata,
    Column("id", String(40), primary_key=True),
    Column("run_id", String(40), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("job", Text, nullable=False),
    Column("path", Text, nullable=False),  # relative to the workspace, '/'-separated
    Column("sha256", String(64), nullable=False),  # the blob: <root>/<sha256[:2]>/<sha256>
    Column("size", BigInteger, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime),
    Index("ix_artifacts_run_id", "run_id"),
    Index("ix_artifacts_expires_at", "expires_at"),
    Index("ix_artifacts_sha256", "sha256"),
)
