"""Users and groups: ``user.present``, ``user.absent``, ``group.present``, ``group.absent``.

Facts come from ``getent`` (``worldtree.ops.facts.users``), changes from the shadow-utils
commands every Linux distribution ships (``useradd``, ``usermod``, ``userdel``, ``groupadd``,
``groupmod``, ``groupdel``). Each operation records the account as it was, and rollback puts
that back: a user or group it created is deleted (with the home directory only when this
operation created it), a changed one gets its previous uid, groups, shell and home, a removed
one is created again with its previous ids (its files are not: ``remove_home`` says
``rollback: unavailable``).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator

from worldtree.ops.command import Quoted, ShellCommand, sh
from worldtree.ops.connection import Connection
from worldtree.ops.facts.users import GroupEntry, UserEntry, forget, get_group, get_user, group_id
from worldtree.ops.operation import Args, Operation, OpError, Planned, RollbackUnavailable

__all__ = ["GroupAbsent", "GroupPresent", "UserAbsent", "UserPresent"]

_NAME = re.compile(r"[a-z_][a-z0-9_.-]*\$?")


def _valid_name(value: str) -> str:
    if not _NAME.fullmatch(value) or len(value) > 32:
        raise ValueError(f"{value!r} is not a user or group name (lower case letters, digits, _ . -; at most 32)")
    return value


async def _exec(conn: Connection, command: ShellCommand) -> None:
    result = await conn.run(command)
    tool = command.render().split()[0]
    if result.exit_status == 127:
        raise OpError(f"{tool} not found on {conn.name}; install the shadow-utils (passwd) package")
    if result.exit_status != 0:
        tail = " | ".join(result.stderr.strip()[-300:].splitlines())
        raise OpError(f"`{command.display()}` exited {result.exit_status}" + (f": {tail}" if tail else ""))
    forget(conn)


class NamedArgs(Args):
    name: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _valid_name(value)


class UserArgs(NamedArgs):
    uid: int | None = Field(default=None, ge=0)
    #: primary group (name or gid); default: what useradd picks
    group: str | None = None
    #: supplementary groups, exactly (None: left alone)
    groups: list[str] | None = None
    shell: str | None = None
    home: str | None = None
    system: bool = False
    create_home: bool = True

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else sorted({_valid_name(v) for v in value})

    @field_validator("home", "shell")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"{value!r} is not an absolute path")
        return value


class UserState:
    """The account before (None: absent), whether its home existed, and the gid wanted."""

    def __init__(self, entry: UserEntry | None, home_exists: bool, gid: int | None) -> None:
        self.entry, self.home_exists, self.gid = entry, home_exists, gid


class UserPresent(Operation):
    """``user.present``: the user exists with the given uid, primary group, groups, shell and home."""

    name = "user.present"
    args_model = UserArgs
    args: UserArgs

    async def precheck(self, conn: Connection) -> UserState:
        a = self.args
        entry = await get_user(conn, a.name)
        home = a.home or (entry.home if entry else f"/home/{a.name}")
        gid = None if a.group is None else await group_id(conn, a.group)
        return UserState(entry, (await conn.stat(home)).exists, gid)

    def _diff(self, state: UserState) -> list[str]:
        a, e = self.args, state.entry
        assert e is not None
        out = []
        if a.uid is not None and a.uid != e.uid:
            out.append(f"uid {e.uid} -> {a.uid}")
        if state.gid is not None and state.gid != e.gid:
            out.append(f"primary group {e.gid} -> {a.group}({state.gid})")
        if a.groups is not None and list(a.groups) != list(e.groups):
            out.append(f"groups {','.join(e.groups) or '-'} -> {','.join(a.groups) or '-'}")
        if a.shell is not None and a.shell != e.shell:
            out.append(f"shell {e.shell} -> {a.shell}")
        if a.home is not None and a.home != e.home:
            out.append(f"home {e.home} -> {a.home}")
        return out

    def plan(self, state: UserState) -> Planned:
        planned = self._plan(state)
        if self.args.group is not None and state.gid is None:  # a group.present earlier may create it
            return Planned("unknown", f"group {self.args.group!r} does not exist on the host yet; then: "
                                      f"{planned.text}")
        return planned

    def _plan(self, state: UserState) -> Planned:
        a = self.args
        if state.entry is None:
            details = [f"uid {a.uid}" if a.uid is not None else "", f"group {a.group}" if a.group else "",
                       f"groups {','.join(a.groups)}" if a.groups else "", f"shell {a.shell}" if a.shell else "",
                       f"home {a.home}" if a.home else "", "system" if a.system else ""]
            shown = ", ".join(d for d in details if d)
            return Planned("change", f"useradd {a.name}" + (f" ({shown})" if shown else ""))
        changes = self._diff(state)
        if not changes:
            return Planned("none", f"user {a.name} exists as wanted (uid {state.entry.uid})")
        return Planned("change", f"usermod {a.name}: " + ", ".join(changes))

    def _create(self) -> ShellCommand:
        a = self.args
        parts: list[Any] = ["useradd"]
        if a.uid is not None:
            parts += ["-u", str(a.uid)]
        if a.group is not None:
            parts += ["-g", Quoted(a.group)]
        if a.groups:
            parts += ["-G", Quoted(",".join(a.groups))]
        if a.shell is not None:
            parts += ["-s", Quoted(a.shell)]
        if a.home is not None:
            parts += ["-d", Quoted(a.home)]
        if a.system:
            parts.append("-r")
        parts.append("-m" if a.create_home else "-M")
        return sh(*parts, "--", Quoted(a.name))

    async def run(self, conn: Connection, state: UserState) -> UserState:
        a = self.args
        if a.group is not None and state.gid is None:
            raise OpError(f"group {a.group!r} does not exist on {conn.name}; add a group.present before this task")
        if state.entry is None:
            await _exec(conn, self._create())
            return state
        parts: list[Any] = ["usermod"]
        e = state.entry
        if a.uid is not None and a.uid != e.uid:
            parts += ["-u", str(a.uid)]
        if state.gid is not None and state.gid != e.gid:
            parts += ["-g", str(state.gid)]
        if a.groups is not None and list(a.groups) != list(e.groups):
            parts += ["-G", Quoted(",".join(a.groups))]
        if a.shell is not None and a.shell != e.shell:
            parts += ["-s", Quoted(a.shell)]
        if a.home is not None and a.home != e.home:
            parts += ["-d", Quoted(a.home)]
        await _exec(conn, sh(*parts, "--", Quoted(a.name)))
        return state

    async def rollback(self, conn: Connection, record: UserState) -> None:
        a = self.args
        if record.entry is None:
            created_home = a.create_home and not record.home_exists
            await _exec(conn, sh("userdel", *(["-r"] if created_home else []), "--", Quoted(a.name)))
            return
        await _exec(conn, _usermod_back(a.name, record.entry))


def _usermod_back(name: str, e: UserEntry) -> ShellCommand:
    return sh("usermod", "-u", str(e.uid), "-g", str(e.gid), "-G", Quoted(",".join(e.groups)),
              "-s", Quoted(e.shell), "-d", Quoted(e.home), "--", Quoted(name))


class UserAbsentArgs(NamedArgs):
    remove_home: bool = False


class UserAbsent(Operation):
    """``user.absent``: no such user. Rollback creates it again with its uid, groups, shell and home
    (not its files: with ``remove_home`` the plan says ``rollback: unavailable``)."""

    name = "user.absent"
    args_model = UserAbsentArgs
    args: UserAbsentArgs

    async def precheck(self, conn: Connection) -> UserEntry | None:
        return await get_user(conn, self.args.name)

    def plan(self, state: UserEntry | None) -> Planned:
        a = self.args
        if state is None:
            return Planned("none", f"user {a.name} does not exist")
        home = f" and its home {state.home}" if a.remove_home else ""
        return Planned("change", f"userdel {a.name} (uid {state.uid}){home}", rollback=not a.remove_home)

    async def run(self, conn: Connection, state: UserEntry | None) -> UserEntry | None:
        await _exec(conn, sh("userdel", *(["-r"] if self.args.remove_home else []), "--", Quoted(self.args.name)))
        return state

    async def rollback(self, conn: Connection, record: UserEntry | None) -> None:
        if record is None:
            return
        if self.args.remove_home:
            raise RollbackUnavailable(f"the home of {record.name} was removed with the user")
        groups: list[str | Quoted] = ["-G", Quoted(",".join(record.groups))] if record.groups else []
        await _exec(conn, sh("useradd", "-u", str(record.uid), "-g", str(record.gid), *groups, "-s",
                             Quoted(record.shell), "-d", Quoted(record.home), "-M", "--", Quoted(record.name)))


class GroupArgs(NamedArgs):
    gid: int | None = Field(default=None, ge=0)
    system: bool = False


class GroupPresent(Operation):
    """``group.present``: the group exists (with ``gid`` when given)."""

    name = "group.present"
    args_model = GroupArgs
    args: GroupArgs

    async def precheck(self, conn: Connection) -> GroupEntry | None:
        return await get_group(conn, self.args.name)

    def plan(self, state: GroupEntry | None) -> Planned:
        a = self.args
        if state is None:
            return Planned("change", f"groupadd {a.name}" + (f" (gid {a.gid})" if a.gid is not None else "")
                           + (" (system)" if a.system else ""))
        if a.gid is not None and a.gid != state.gid:
            return Planned("change", f"groupmod {a.name}: gid {state.gid} -> {a.gid}")
        return Planned("none", f"group {a.name} exists (gid {state.gid})")

    async def run(self, conn: Connection, state: GroupEntry | None) -> GroupEntry | None:
        a = self.args
        gid = ["-g", str(a.gid)] if a.gid is not None else []
        if state is None:
            await _exec(conn, sh("groupadd", *gid, *(["-r"] if a.system else []), "--", Quoted(a.name)))
        else:
            await _exec(conn, sh("groupmod", *gid, "--", Quoted(a.name)))
        return state

    async def rollback(self, conn: Connection, record: GroupEntry | None) -> None:
        if record is None:
            await _exec(conn, sh("groupdel", "--", Quoted(self.args.name)))
        else:
            await _exec(conn, sh("groupmod", "-g", str(record.gid), "--", Quoted(self.args.name)))


class GroupAbsentArgs(NamedArgs):
    """Only the name."""


class GroupAbsent(Operation):
    """``group.absent``: no such group. Rollback creates it again with its gid and members."""

    name = "group.absent"
    args_model = GroupAbsentArgs
    args: GroupAbsentArgs

    async def precheck(self, conn: Connection) -> GroupEntry | None:
        return await get_group(conn, self.args.name)

    def plan(self, state: GroupEntry | None) -> Planned:
        if state is None:
            return Planned("none", f"group {self.args.name} does not exist")
        members = f", members {','.join(state.members)}" if state.members else ""
        return Planned("change", f"groupdel {self.args.name} (gid {state.gid}{members})")

    async def run(self, conn: Connection, state: GroupEntry | None) -> GroupEntry | None:
        await _exec(conn, sh("groupdel", "--", Quoted(self.args.name)))
        return state

    async def rollback(self, conn: Connection, record: GroupEntry | None) -> None:
        if record is None:
            return
        await _exec(conn, sh("groupadd", "-g", str(record.gid), "--", Quoted(record.name)))
        for member in record.members:
            await _exec(conn, sh("usermod", "-a", "-G", Quoted(record.name), "--", Quoted(member)))
