"""Tables of the agents feature (migration 0005): agents, the jobs they claim, the tasks of those jobs.

An ``agent_jobs`` row is one job of one run attempt (one "generation": a job whose agent was lost
gets a new row) that an agent claims as a whole, so its steps share that agent's workspace. Each
dispatch of one of its nodes (a precheck, a try, a rollback) is an ``agent_tasks`` row. Log lines
the agent sends land in ``agent_log_lines`` keyed by (job, line number): a line sent twice (a resend
after a reconnect) is the same row, so nothing is duplicated. Kept on the shared ``metadata``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text

from worldtree.store.tables import UtcDateTime, metadata

agents = Table(
    "agents", metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("labels", Text, nullable=False),  # JSON object of strings
    Column("capacity", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # online | offline
    Column("draining", Integer, nullable=False, server_default="0"),
    Column("host", Text, nullable=False),  # JSON: hostname, os, arch, cpus, memory_bytes, version
    Column("metrics", Text, nullable=False, server_default="{}"),  # JSON: AgentMetrics
    Column("registered_at", UtcDateTime, nullable=False),
    Column("last_seen", UtcDateTime, nullable=False),
    Column("offline_since", UtcDateTime),
    # SHA-256 hex of the session secret Register issued (migration 0010); NULL: register again
    Column("secret_hash", String(64)),
)

agent_jobs = Table(
    "agent_jobs", metadata,
    Column("id", String(40), primary_key=True),
    Column("run_id", String(40), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("job", Text, nullable=False),
    Column("selector", Text),  # JSON of a LabelSelector; NULL: any agent
    Column("graph", Text, nullable=False),  # the run's graph JSON (the agent runs nodes of it)
    Column("state", String(16), nullable=False),  # queued | claimed | lost | done
    Column("agent_id", String(40)),
    Column("lease_token", BigInteger, nullable=False, server_default="0"),
    Column("lease_until", UtcDateTime),
    Column("acked_line", BigInteger, nullable=False, server_default="0"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("claimed_at", UtcDateTime),
    Column("error", Text),
    Index("ix_agent_jobs_state", "state"),
    Index("ix_agent_jobs_run_id", "run_id"),
)

agent_tasks = Table(
    "agent_tasks", metadata,
    Column("id", String(40), primary_key=True),
    Column("job_id", String(40), ForeignKey("agent_jobs.id", ondelete="CASCADE"), nullable=False),
    Column("node", Text, nullable=False),
    Column("command", Text, nullable=False),
    Column("env", Text, nullable=False),  # JSON; never secret values (the agent resolves its own)
    Column("purpose", String(16), nullable=False),  # run | precheck | rollback
    Column("try_number", Integer, nullable=False),
    Column("workdir", Text),  # the node's workdir, relative to the job's workspace
    Column("state", String(16), nullable=False),  # queued | sent | done
    Column("stop_reason", Text),
    Column("exit_code", Integer),
    Column("error", Text),
    Column("stopped", Integer, nullable=False, server_default="0"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Index("ix_agent_tasks_job_id", "job_id"),
    Index("ix_agent_tasks_state", "state"),
)

agent_log_lines = Table(
    "agent_log_lines", metadata,
    Column("job_id", String(40), ForeignKey("agent_jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("line", BigInteger, primary_key=True),
    Column("task_id", String(40), nullable=False),
    Column("stream", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
)
