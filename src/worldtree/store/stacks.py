"""Rows of stacks (migration 0009): applied state, leases, agent memory, skill sources and cache.

:class:`StackRows` takes the SQLAlchemy engine of a run store (``server_data.engine_of``) and does
plain row work on SQLite and PostgreSQL alike; what the rows mean is :mod:`worldtree.stack`'s.

Contracts:

* ``save_phase`` replaces the (stack, env, phase) row in one transaction: a reader sees the old
  state or the new one, never a mix.
* ``acquire`` is a compare-and-set: a free or expired lease (or one this holder already has) is
  taken and a new token returned; otherwise None. ``release`` only frees the lease while the token
  still holds it, so a holder whose lease expired and was taken cannot free the new holder's.
Driver errors leave as :class:`~worldtree.errors.StoreError`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from worldtree.errors import StoreError
from worldtree.store.schema import reason, write_transaction
from worldtree.store.stacks_tables import skill_sources, skills, stack_leases, stack_memory, stack_state

T = TypeVar("T")


def _now() -> datetime:
    return datetime.now(UTC)


class StackRows:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _write(self, action: str) -> Iterator[Connection]:
        try:
            with write_transaction(self.engine) as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"stacks: cannot {action}: {reason(exc)}") from exc

    def _read(self, action: str, body: Callable[[Connection], T]) -> T:
        try:
            with self.engine.connect() as conn:
                return body(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"stacks: cannot {action}: {reason(exc)}") from exc

    # -- applied state ---------------------------------------------------------------------------
    def load_state(self, stack: str, env: str) -> dict[str, Any]:
        """Every phase's recorded state merged: ``{"resources": {phase: {...}}, "outputs": {target: {...}}}``
        (empty before the first apply), the shape plans are digested against."""
        rows = self._read("read the applied state", lambda conn: conn.execute(
            select(stack_state.c.phase, stack_state.c.state_json)
            .where(stack_state.c.stack == stack, stack_state.c.env == env)
            .order_by(stack_state.c.phase)).all())
        state: dict[str, Any] = {}
        for phase, text in rows:
            part = json.loads(text)
            if part.get("resources"):
                state.setdefault("resources", {})[phase] = part["resources"]
            for target, values in (part.get("outputs") or {}).items():
                state.setdefault("outputs", {}).setdefault(target, {}).update(values)
        return state

    def phase_part(self, stack: str, env: str, phase: str) -> dict[str, Any]:
        """The row of one phase as saved (``{}`` before its first apply)."""
        text = self._read("read the applied state", lambda conn: conn.execute(
            select(stack_state.c.state_json).where(stack_state.c.stack == stack, stack_state.c.env == env,
                                                  stack_state.c.phase == phase)).scalar())
        return dict(json.loads(text)) if text else {}

    def phases(self, stack: str, env: str) -> list[dict[str, Any]]:
        """One dict per applied phase: ``{phase, digest, run_id, applied_at}``."""
        rows = self._read("read the applied state", lambda conn: conn.execute(
            select(stack_state.c.phase, stack_state.c.digest, stack_state.c.run_id, stack_state.c.applied_at)
            .where(stack_state.c.stack == stack, stack_state.c.env == env).order_by(stack_state.c.phase)).all())
        return [{"phase": p, "digest": d, "run_id": r, "applied_at": a.isoformat()} for p, d, r, a in rows]

    def save_phase(self, stack: str, env: str, phase: str, *, resources: dict[str, Any], outputs: dict[str, Any],
                   digest: str, plan_sha256: str, run_id: str | None) -> None:
        text = json.dumps({"resources": resources, "outputs": outputs, "plan_sha256": plan_sha256}, sort_keys=True)
        key = and_(stack_state.c.stack == stack, stack_state.c.env == env, stack_state.c.phase == phase)
        with self._write("record the applied state") as conn:
            conn.execute(delete(stack_state).where(key))
            conn.execute(insert(stack_state).values(stack=stack, env=env, phase=phase, state_json=text, digest=digest,
                                                    run_id=run_id, applied_at=_now()))

    # -- leases ----------------------------------------------------------------------------------
    def acquire(self, key: str, holder: str, seconds: float, *, replacing: str | None = None) -> str | None:
        """Take (or renew, for the same holder) the lease ``key`` for ``seconds``; its token, or None.

        ``replacing``: also take it while ``replacing`` holds it (the caller knows that holder is dead).
        """
        token = secrets.token_hex(16)
        now = _now()
        expires = now + timedelta(seconds=seconds)
        try:
            with self._write("take a lease") as conn:
                row = conn.execute(select(stack_leases.c.holder, stack_leases.c.token, stack_leases.c.expires_at)
                                   .where(stack_leases.c.key == key)).first()
                if row is None:
                    conn.execute(insert(stack_leases).values(key=key, holder=holder, token=token, expires_at=expires))
                    return token
                if row.holder not in (holder, replacing) and row.expires_at > now:
                    return None
                done = conn.execute(update(stack_leases)
                                    .where(stack_leases.c.key == key, stack_leases.c.token == row.token)
                                    .values(holder=holder, token=token, expires_at=expires))
                return token if done.rowcount == 1 else None
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):  # another process inserted it first
                return None
            raise

    def release(self, key: str, token: str) -> None:
        with self._write("release a lease") as conn:
            conn.execute(delete(stack_leases).where(stack_leases.c.key == key, stack_leases.c.token == token))

    def holder(self, key: str) -> str | None:
        """Who holds ``key`` now (an expired lease has no holder)."""
        row = self._read("read a lease", lambda conn: conn.execute(
            select(stack_leases.c.holder, stack_leases.c.expires_at).where(stack_leases.c.key == key)).first())
        return None if row is None or row.expires_at <= _now() else str(row.holder)

    # -- agent memory ----------------------------------------------------------------------------
    def remember(self, stack: str, env: str, key: str, value: Any) -> None:
        where = and_(stack_memory.c.stack == stack, stack_memory.c.env == env, stack_memory.c.key == key)
        with self._write("write the agent's memory") as conn:
            conn.execute(delete(stack_memory).where(where))
            conn.execute(insert(stack_memory).values(stack=stack, env=env, key=key, updated_at=_now(),
                                                     value_json=json.dumps(value, sort_keys=True)))

    def recall(self, stack: str, env: str) -> dict[str, Any]:
        """Everything remembered for (stack, env): key → value."""
        rows = self._read("read the agent's memory", lambda conn: conn.execute(
            select(stack_memory.c.key, stack_memory.c.value_json)
            .where(stack_memory.c.stack == stack, stack_memory.c.env == env)).all())
        return {k: json.loads(v) for k, v in rows}

    # -- skills ----------------------------------------------------------------------------------
    def add_source(self, name: str, kind: str, uri: str, ref: str | None, path: str | None, priority: int) -> None:
        """Add or replace the source ``name``."""
        with self._write("add a skill source") as conn:
            conn.execute(delete(skill_sources).where(skill_sources.c.name == name))
            conn.execute(insert(skill_sources).values(name=name, kind=kind, uri=uri, ref=ref, path=path,
                                                      priority=priority, created_at=_now()))

    def sources(self) -> list[dict[str, Any]]:
        """Every source, lowest priority first (so later ones win), then by name."""
        rows = self._read("list skill sources", lambda conn: conn.execute(
            select(skill_sources).order_by(skill_sources.c.priority, skill_sources.c.name)).mappings().all())
        return [{k: row[k] for k in ("name", "kind", "uri", "ref", "path", "priority")} for row in rows]

    def cache_skills(self, source: str, entries: list[dict[str, str]]) -> None:
        """Replace what ``source`` gave: ``[{name, sha256, content, origin, version}]``."""
        with self._write("cache skills") as conn:
            conn.execute(delete(skills).where(skills.c.source == source))
            for entry in entries:
                conn.execute(insert(skills).values(source=source, fetched_at=_now(), **entry))

    def cached_skills(self) -> list[dict[str, Any]]:
        rows = self._read("read the skills cache", lambda conn: conn.execute(
            select(skills).order_by(skills.c.source, skills.c.name)).mappings().all())
        return [{k: row[k] for k in ("source", "name", "sha256", "content", "origin", "version")} for row in rows]
