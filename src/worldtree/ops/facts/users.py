"""User and group facts from ``getent`` on the host (local or SSH alike: one command each).

``getent`` reads whatever the host's NSS says (``/etc/passwd``, LDAP, ...), so an owner name
resolves on the host that will own the file, never on the controller. Name -> id lookups of
one apply are cached per connection: twenty files owned by ``www-data`` cost one lookup.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from worldtree.ops.command import Quoted, sh
from worldtree.ops.connection import Connection
from worldtree.ops.operation import OpError

__all__ = ["GroupEntry", "UserEntry", "get_group", "get_user", "group_id", "user_id"]


@dataclass(frozen=True, slots=True)
class UserEntry:
    name: str
    uid: int
    gid: int
    home: str
    shell: str
    #: supplementary groups (names), sorted
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...] = ()


_cache: weakref.WeakKeyDictionary[Connection, dict[tuple[str, str], int | None]] = weakref.WeakKeyDictionary()


async def _getent(conn: Connection, db: str, key: str) -> list[str] | None:
    result = await conn.run(sh("getent", db, Quoted(key)))
    if result.exit_status == 2 or (result.exit_status == 0 and not result.stdout.strip()):
        return None  # 2: no such key
    if result.exit_status == 127:
        raise OpError(f"getent not found on {conn.name}; it is needed to read users and groups")
    if result.exit_status != 0:
        raise OpError(f"getent {db} {key} on {conn.name} exited {result.exit_status}: {result.stderr.strip()[-200:]}")
    return result.stdout.splitlines()[0].split(":")


async def get_user(conn: Connection, name: str) -> UserEntry | None:
    """The user ``name`` (with its supplementary groups), or None when the host has none."""
    fields = await _getent(conn, "passwd", name)
    if fields is None or len(fields) < 7:
        return None
    groups = await conn.run(sh("id -Gn", Quoted(fields[0])))
    primary = await _getent(conn, "group", fields[3])
    names = set(groups.stdout.split()) if groups.exit_status == 0 else set()
    if primary is not None:
        names.discard(primary[0])
    return UserEntry(fields[0], int(fields[2]), int(fields[3]), fields[5], fields[6], tuple(sorted(names)))


async def get_group(conn: Connection, name: str) -> GroupEntry | None:
    fields = await _getent(conn, "group", name)
    if fields is None or len(fields) < 4:
        return None
    return GroupEntry(fields[0], int(fields[2]), tuple(m for m in fields[3].split(",") if m))


async def _lookup(conn: Connection, db: str, value: str | int) -> int | None:
    if isinstance(value, int) or value.isdigit():
        return int(value)
    cache = _cache.setdefault(conn, {})
    key = (db, value)
    if key not in cache:
        fields = await _getent(conn, db, value)
        cache[key] = int(fields[2]) if fields is not None and len(fields) > 2 else None
    return cache[key]


async def user_id(conn: Connection, owner: str | int) -> int | None:
    """The uid of ``owner`` (a name or an id) on the host; None when no such user exists (yet)."""
    return await _lookup(conn, "passwd", owner)


async def group_id(conn: Connection, group: str | int) -> int | None:
    return await _lookup(conn, "group", group)


def forget(conn: Connection) -> None:
    """Drop the cached ids of ``conn`` (after an operation created or removed users or groups)."""
    _cache.pop(conn, None)
