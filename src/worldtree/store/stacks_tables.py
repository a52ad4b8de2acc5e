"""Tables of stacks, skills and stack agents (migration 0009), on the shared ``metadata``.

* ``stack_state``: what applies recorded, one row per (stack, env, phase): the phase's resources
  (``after`` per resource) and the outputs it produced, with the digest of the plan applied.
* ``stack_leases``: one holder per key (``apply/<stack>/<env>/<phase>``, ``agent/<stack>/<env>``),
  until ``expires_at``; the token fences a holder that lost it.
* ``stack_memory``: an agent's memory per (stack, env, key): last results, drift, caches (JSON).
* ``skill_sources``: external skill sources (local, git, http) with their priority.
* ``skills``: the skills cache: the text of every skill a source gave, its sha256 and version.
"""

from __future__ import annotations

from sqlalchemy import Column, Integer, String, Table, Text

from worldtree.store.tables import UtcDateTime, metadata

stack_state = Table(
    "stack_state", metadata,
    Column("stack", String(200), primary_key=True),
    Column("env", String(200), primary_key=True),
    Column("phase", String(20), primary_key=True),
    Column("state_json", Text, nullable=False),
    Column("digest", String(80), nullable=False),
    Column("run_id", String(40)),
    Column("applied_at", UtcDateTime, nullable=False),
)

stack_leases = Table(
    "stack_leases", metadata,
    Column("key", String(450), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("token", String(64), nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)

stack_memory = Table(
    "stack_memory", metadata,
    Column("stack", String(200), primary_key=True),
    Column("env", String(200), primary_key=True),
    Column("key", String(100), primary_key=True),
    Column("value_json", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

skill_sources = Table(
    "skill_sources", metadata,
    Column("name", String(200), primary_key=True),
    Column("kind", String(10), nullable=False),
    Column("uri", Text, nullable=False),
    Column("ref", String(200)),
    Column("path", Text),
    Column("priority", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

skills = Table(
    "skills", metadata,
    Column("source", String(200), primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("content", Text, nullable=False),
    Column("origin", Text, nullable=False),
    Column("version", String(200), nullable=False),
    Column("fetched_at", UtcDateTime, nullable=False),
)
