"""File operations: directory, file, template, line, absent, link.

Each precheck records the path as it is (kind, mode, bytes of a regular file, a link's
target); that record is both what the plan compares with and what rollback writes back,
byte for byte, and its owner and group. ``owner``/``group`` (names or ids, resolved on the host
with ``getent``) are managed only when given; otherwise a new file belongs to the connecting
user, as with ``cp``.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import field_validator, model_validator

from worldtree.errors import WorldtreeError
from worldtree.ops.command import Quoted, sh
from worldtree.ops.connection import Connection, PathState
from worldtree.ops.facts.users import group_id, user_id
from worldtree.ops.operation import Args, Operation, OpError, Planned, RollbackUnavailable, ValidMode, text_diff

__all__ = ["FileAbsent", "FileDirectory", "FileFile", "FileLine", "FileLink", "FileTemplate"]


def _absolute(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"{value!r} is not an absolute path; write the full path on the host")
    if "\0" in value:
        raise ValueError("the path contains a NUL character")
    return posixpath.normpath(value)


@dataclass(frozen=True, slots=True)
class Before:
    """A path before the operation: its state and, for a regular file, its bytes."""

    state: PathState
    data: bytes | None = None


#: files up to this size are read, compared and kept for rollback; larger ones are refused
#: (file.file/template/line) or removed without a way back (file.absent)
MAX_SNAPSHOT = 64 << 20


async def _snapshot(conn: Connection, path: str) -> Before:
    state = await conn.stat(path)
    small = state.kind == "file" and (state.size or 0) <= MAX_SNAPSHOT
    return Before(state, await conn.read(path) if small else None)


async def _restore(conn: Connection, path: str, before: Before, owner_managed: bool = False) -> None:
    """Put ``path`` back as ``before`` recorded it (a file's bytes, mode and owner, a link, or nothing)."""
    now = await conn.stat(path)
    if before.state.kind == "absent":
        if now.exists:
            await conn.remove(path)
    elif before.state.kind == "file" and before.data is not None and before.state.mode is not None:
        if now.kind == "dir":
            raise OpError(f"{path} is now a directory; cannot put the file back")
        await conn.write(path, before.data, before.state.mode)
    elif before.state.kind == "link" and before.state.link_target is not None:
        await conn.symlink(before.state.link_target, path)
    elif before.state.kind == "dir" and before.state.mode is not None:
        await conn.chmod(path, before.state.mode)
    else:
        raise RollbackUnavailable(f"{path} was a {before.state.kind}; it cannot be restored")
    await _restore_owner(conn, path, before.state, owner_managed)


async def _restore_owner(conn: Connection, path: str, before: PathState, owner_managed: bool) -> None:
    """Give ``path`` back the owner and group ``before`` recorded (when they differ now).

    An operation that did not manage ownership only tries: writing the old bytes back as a
    user who may not chown gives that user's file, as the write itself did; an operation with
    ``owner``/``group`` must restore them or fail."""
    if before.kind not in ("file", "dir") or before.uid is None or before.gid is None:
        return
    now = await conn.stat(path)
    if (now.uid, now.gid) != (before.uid, before.gid):
        try:
            await conn.chown(path, before.uid, before.gid)
        except (OSError, WorldtreeError):
            if owner_managed:
                raise


@dataclass(frozen=True, slots=True)
class Ids:
    """The owner and group an operation wants (None: not managed); ``missing`` names one the host
    does not have (yet)."""

    uid: int | None = None
    gid: int | None = None
    shown: str = ""
    missing: str | None = None

    @property
    def managed(self) -> bool:
        return self.uid is not None or self.gid is not None

    def change(self, state: PathState) -> str | None:
        """``owner 0:0 -> www-data(33):-``, or None when the path already has them."""
        if (self.uid is None or state.uid == self.uid) and (self.gid is None or state.gid == self.gid):
            return None
        return f"owner {state.uid}:{state.gid} -> {self.shown}"

    async def apply(self, conn: Connection, path: str) -> None:
        if self.missing:
            raise OpError(f"{self.missing} does not exist on {conn.name}; create it first (user.present, "
                          "group.present)")
        if self.managed:
            await conn.chown(path, -1 if self.uid is None else self.uid, -1 if self.gid is None else self.gid)


NO_IDS = Ids()


async def _wanted_ids(conn: Connection, owner: str | int | None, group: str | int | None) -> Ids:
    if owner is None and group is None:
        return NO_IDS
    uid = None if owner is None else await user_id(conn, owner)
    gid = None if group is None else await group_id(conn, group)
    missing = (f"user {owner!r}" if owner is not None and uid is None
               else f"group {group!r}" if group is not None and gid is None else None)

    def show(value: str | int | None, number: int | None) -> str:
        if value is None:
            return "-"
        return str(number) if str(value) == str(number) else f"{value}({number})"

    return Ids(uid, gid, f"{show(owner, uid)}:{show(group, gid)}", missing)


class OwnerArgs(Args):
    """``owner`` and ``group``: a name or a numeric id on the host."""

    owner: str | int | None = None
    group: str | int | None = None

    @field_validator("owner", "group")
    @classmethod
    def _name(cls, value: str | int | None) -> str | int | None:
        if isinstance(value, int) and value < 0:
            raise ValueError("an id is 0 or more")
        if isinstance(value, str) and (not value or not re.fullmatch(r"[A-Za-z0-9_.][A-Za-z0-9_.$-]*", value)):
            raise ValueError(f"{value!r} is not a user or group name")
        return value


def _mode_text(mode: int | None) -> str:
    return "?" if mode is None else f"{mode:04o}"


class PathArgs(Args):
    path: str

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return _absolute(value)


class DirectoryArgs(PathArgs, OwnerArgs, ValidMode):
    mode: int = 0o755


class FileDirectory(Operation):
    """``file.directory``: the directory exists with ``mode`` (missing parents are created too)."""

    name = "file.directory"
    args_model = DirectoryArgs
    args: DirectoryArgs

    def writes(self) -> list[str]:
        return [self.args.path]

    _ids: Ids = NO_IDS

    async def precheck(self, conn: Connection) -> PathState:
        self._ids = await _wanted_ids(conn, self.args.owner, self.args.group)
        return await conn.stat(self.args.path)

    def plan(self, state: PathState) -> Planned:
        a = self.args
        ids = self._ids
        if state.kind == "absent":
            owned = f", owner {ids.shown}" if ids.managed or ids.missing else ""
            planned = Planned("change", f"create directory {a.path} (mode {_mode_text(a.mode)}{owned})")
        elif state.kind != "dir":
            raise OpError(f"{a.path} is a {state.kind}, not a directory; remove it first (file.absent)")
        else:
            changes = ([f"chmod {a.path} {_mode_text(state.mode)} -> {_mode_text(a.mode)}"]
                       if state.mode != a.mode else [])
            owner = None if ids.missing else ids.change(state)
            changes += [f"chown {a.path} {owner.removeprefix('owner ')}"] if owner else []
            if not changes and not ids.missing:
                owned = f" and owner {ids.shown}" if ids.managed else ""
                return Planned("none", f"directory {a.path} exists with mode {_mode_text(a.mode)}{owned}")
            planned = Planned("change", ", ".join(changes) or f"chown {a.path} {ids.shown}")
        if ids.missing:
            return Planned("unknown", f"{ids.missing} does not exist on the host yet; then: {planned.text}")
        return planned

    async def run(self, conn: Connection, state: PathState) -> Any:
        a = self.args
        if self._ids.missing:
            await self._ids.apply(conn, a.path)  # raises: say which user or group is missing
        if state.kind == "dir":
            await conn.chmod(a.path, a.mode)
            try:
                await self._ids.apply(conn, a.path)
            except BaseException:  # a failed step leaves no record to roll back with: undo here
                await self.rollback(conn, ("chmod", state.mode, state))
                raise
            return ("chmod", state.mode, state)
        missing = [a.path]
        parent = posixpath.dirname(a.path)
        while parent not in ("/", "") and not (await conn.stat(parent)).exists:
            missing.append(parent)
            parent = posixpath.dirname(parent)
        created: list[str] = []
        try:
            for path in reversed(missing):
                await conn.mkdir(path, a.mode)
                created.append(path)
            await self._ids.apply(conn, a.path)
        except BaseException:  # e.g. a chown the login user may not make: remove what was created
            await self.rollback(conn, ("created", created))
            raise
        return ("created", created)

    async def rollback(self, conn: Connection, record: Any) -> None:
        what, value, *rest = record
        if what == "chmod":
            await conn.chmod(self.args.path, value)
            if rest:
                await _restore_owner(conn, self.args.path, rest[0], owner_managed=True)
            return
        for path in reversed(value):
            try:
                await conn.remove(path)
            except Exception as exc:
                raise OpError(f"cannot remove directory {path} (not empty?): {exc}") from None


class FileArgs(PathArgs, OwnerArgs, ValidMode):
    content: str | None = None
    src: str | None = None
    mode: int = 0o644

    @model_validator(mode="after")
    def _one_source(self) -> FileArgs:
        if (self.content is None) == (self.src is None):
            raise ValueError("give exactly one of `content` and `src`")
        return self


class _WholeFile(Operation):
    """A file whose whole content is known before running (file.file, file.template)."""

    def desired(self) -> bytes:
        raise NotImplementedError

    @property
    def path(self) -> str:
        return str(self.args.path)  # type: ignore[attr-defined]

    @property
    def mode(self) -> int:
        return int(self.args.mode)  # type: ignore[attr-defined]

    _ids: Ids = NO_IDS

    def writes(self) -> list[str]:
        return [self.path]

    async def _resolve_ids(self, conn: Connection) -> None:
        owner, group = getattr(self.args, "owner", None), getattr(self.args, "group", None)
        self._ids = await _wanted_ids(conn, owner, group)

    async def precheck(self, conn: Connection) -> Before:
        await self._resolve_ids(conn)
        return await _snapshot(conn, self.path)

    def plan(self, state: Before) -> Planned:
        planned = self._plan(state)
        if self._ids.missing:
            return Planned("unknown", f"{self._ids.missing} does not exist on the host yet; then: {planned.text}",
                           planned.diff)
        return planned

    def _plan(self, state: Before) -> Planned:
        new = self.desired()
        digest = hashlib.sha256(new).hexdigest()[:12]
        ids = self._ids
        if state.state.kind == "absent":
            owned = f", owner {ids.shown}" if ids.managed else ""
            return Planned("change", f"create {self.path} ({len(new)} bytes, sha256 {digest}, mode "
                                     f"{_mode_text(self.mode)}{owned})", text_diff(self.path, None, new))
        if state.state.kind != "file":
            raise OpError(f"{self.path} is a {state.state.kind}, not a file; remove it first (file.absent)")
        if state.data is None:
            raise OpError(f"{self.path} is larger than {MAX_SNAPSHOT >> 20} MiB; manage it with a command")
        changes = []
        diff = None
        if state.data != new:
            old = hashlib.sha256(state.data or b"").hexdigest()[:12]
            changes.append(f"content sha256 {old} -> {digest} ({len(new)} bytes)")
            diff = text_diff(self.path, state.data, new)
        if state.state.mode != self.mode:
            changes.append(f"mode {_mode_text(state.state.mode)} -> {_mode_text(self.mode)}")
        owner = None if ids.missing else ids.change(state.state)
        if owner:
            changes.append(owner)
        if not changes:
            owned = f" and owner {ids.shown}" if ids.managed else ""
            return Planned("none", f"{self.path} has this content and mode {_mode_text(self.mode)}{owned}")
        return Planned("change", f"update {self.path}: " + ", ".join(changes), diff)

    async def run(self, conn: Connection, state: Before) -> Before:
        new = self.desired()
        if self._ids.missing:
            await self._ids.apply(conn, self.path)  # raises: say which user or group is missing
        if state.data == new:
            await conn.chmod(self.path, self.mode)
        else:
            await conn.write(self.path, new, self.mode)
        try:
            await self._ids.apply(conn, self.path)
        except BaseException:  # the bytes are written but the step fails, with no record: put them back
            await _restore(conn, self.path, state)
            raise
        return state

    async def rollback(self, conn: Connection, record: Before) -> None:
        if getattr(self.args, "owner", None) is not None or getattr(self.args, "group", None) is not None:
            await self._resolve_ids(conn)  # a rollback in a new process (an `op:` step) has not prechecked
        await _restore(conn, self.path, record, self._ids.managed)


class FileFile(_WholeFile):
    """``file.file``: the file has ``content`` (or the bytes of the local file ``src``) and ``mode``."""

    name = "file.file"
    args_model = FileArgs
    args: FileArgs

    def desired(self) -> bytes:
        if self.args.content is not None:
            return self.args.content.encode("utf-8")
        if "data" not in self.context.extra:
            src = Path(self.args.src or "")
            path = src if src.is_absolute() else self.context.base_dir / src
            try:
                self.context.extra["data"] = path.read_bytes()
            except OSError as exc:
                raise OpError(f"cannot read src {path}: {exc.strerror or exc}") from None
        data: bytes = self.context.extra["data"]
        return data


class TemplateArgs(OwnerArgs, ValidMode):
    src: str
    dest: str
    mode: int = 0o644

    @field_validator("dest")
    @classmethod
    def _dest(cls, value: str) -> str:
        return _absolute(value)


class FileTemplate(_WholeFile):
    """``file.template``: ``dest`` holds the Jinja2 template ``src`` rendered on the controller.

    The text is rendered by the planner (it knows the variables and facts) and handed in as
    ``context.extra["rendered"]``; a missing variable never reaches a host.
    """

    name = "file.template"
    args_model = TemplateArgs
    args: TemplateArgs

    @property
    def path(self) -> str:
        return self.args.dest

    def desired(self) -> bytes:
        rendered: str = self.context.extra["rendered"]
        return rendered.encode("utf-8")


class LineArgs(PathArgs, OwnerArgs, ValidMode):
    line: str
    match: str | None = None
    mode: int = 0o644

    @field_validator("line")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\n" in value:
            raise ValueError("`line` is one line; use file.file or file.template for several")
        return value

    @field_validator("match")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"`match` is not a regular expression: {exc}") from None
        return value


class FileLine(_WholeFile):
    """``file.line``: ``line`` is in the file: it replaces the last line ``match`` finds, else it is
    appended (the file is created with ``mode`` when missing)."""

    name = "file.line"
    args_model = LineArgs
    args: LineArgs
    _before: Before | None = None

    async def precheck(self, conn: Connection) -> Before:
        await self._resolve_ids(conn)
        self._before = await _snapshot(conn, self.args.path)
        return self._before

    def desired(self) -> bytes:
        assert self._before is not None
        return self.edit(self._before.data)

    def plan(self, state: Before) -> Planned:
        self._before = state
        return super().plan(state)

    @property
    def mode(self) -> int:
        before = self._before
        if before is not None and before.state.kind == "file" and before.state.mode is not None:
            return before.state.mode  # editing a line keeps the file's mode
        return self.args.mode

    def edit(self, data: bytes | None) -> bytes:
        """The file's bytes with the line in place (``data`` itself when it already is)."""
        text = (data or b"").decode("utf-8", "surrogateescape")
        lines = text.splitlines()
        if self.args.match is not None:
            pattern = re.compile(self.args.match)
            hits = [i for i, line in enumerate(lines) if pattern.search(line)]
            if hits:
                if lines[hits[-1]] == self.args.line:
                    return data or b""
                lines[hits[-1]] = self.args.line
                return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
        if self.args.line in lines:
            return data or b""
        if text and not text.endswith("\n"):
            text += "\n"
        return (text + self.args.line + "\n").encode("utf-8", "surrogateescape")

    async def run(self, conn: Connection, state: Before) -> Before:
        self._before = state
        return await super().run(conn, state)


class AbsentArgs(PathArgs):
    pass


class FileAbsent(Operation):
    """``file.absent``: nothing is at ``path``. A file or link removed is restored by rollback; a
    directory tree is not (the plan says ``rollback: unavailable``)."""

    name = "file.absent"
    args_model = AbsentArgs
    args: AbsentArgs

    def writes(self) -> list[str]:
        return [self.args.path]

    async def precheck(self, conn: Connection) -> Before:
        return await _snapshot(conn, self.args.path)

    def plan(self, state: Before) -> Planned:
        p = self.args.path
        if state.state.kind == "absent":
            return Planned("none", f"{p} does not exist")
        if state.state.kind == "dir":
            return Planned("change", f"remove directory tree {p}", rollback=False)
        if state.state.kind == "file":
            return Planned("change", f"remove file {p} ({state.state.size} bytes)", rollback=state.data is not None)
        if state.state.kind == "link":
            return Planned("change", f"remove link {p} -> {state.state.link_target}")
        return Planned("change", f"remove {state.state.kind} {p}", rollback=False)

    async def run(self, conn: Connection, state: Before) -> Before:
        if state.state.kind == "dir":
            result = await conn.run(sh("rm -rf --", Quoted(self.args.path)))
            if result.exit_status != 0:
                raise OpError(f"rm -rf {self.args.path} failed: {result.stderr.strip()[-300:]}")
        elif state.state.exists:
            await conn.remove(self.args.path)
        return state

    async def rollback(self, conn: Connection, record: Before) -> None:
        if record.state.kind not in ("absent", "file", "link"):
            raise RollbackUnavailable(f"the removed {record.state.kind} {self.args.path} cannot be restored")
        await _restore(conn, self.args.path, record)


class LinkArgs(PathArgs):
    target: str

    @field_validator("target")
    @classmethod
    def _target(cls, value: str) -> str:
        if not value or "\0" in value:
            raise ValueError("`target` must be a non-empty path")
        return value


class FileLink(Operation):
    """``file.link``: ``path`` is a symbolic link to ``target`` (a link elsewhere is retargeted)."""

    name = "file.link"
    args_model = LinkArgs
    args: LinkArgs

    def writes(self) -> list[str]:
        return [self.args.path]

    async def precheck(self, conn: Connection) -> Before:
        return Before(await conn.stat(self.args.path))

    def plan(self, state: Before) -> Planned:
        a = self.args
        s = state.state
        if s.kind == "absent":
            return Planned("change", f"link {a.path} -> {a.target}")
        if s.kind != "link":
            raise OpError(f"{a.path} is a {s.kind}, not a link; remove it first (file.absent)")
        if s.link_target == a.target:
            return Planned("none", f"{a.path} links to {a.target}")
        return Planned("change", f"retarget {a.path}: {s.link_target} -> {a.target}")

    async def run(self, conn: Connection, state: Before) -> Before:
        await conn.symlink(self.args.target, self.args.path)
        return state

    async def rollback(self, conn: Connection, record: Before) -> None:
        await _restore(conn, self.args.path, record)
