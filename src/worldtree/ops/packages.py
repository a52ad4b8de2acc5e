"""Packages: ``package.apt``, ``package.dnf``, ``package.apk`` (system) and ``package.pip`` (a virtualenv).

One contract for every manager: ``name`` (one or a list), ``state`` present / absent / latest.
Precheck reads what is installed (no side effects: the cache is not refreshed to plan);
plan names exactly the packages that change; run calls the manager once for all of them;
rollback undoes only what this apply did: packages it installed are removed, packages it
removed are installed again at their recorded version, packages it upgraded go back to their
recorded version (apt and pip; dnf and apk cannot pin reliably, so their upgrades say
``rollback: unavailable``).

``update_cache: true`` refreshes the cache right before installing, only when something is to
be installed (a second apply that changes nothing does not touch the network). With
``state: latest`` and ``update_cache`` the newest version is known only after the refresh, so
such a plan says ``unknown until run``.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import field_validator

from worldtree.ops.command import Quoted, ShellCommand, sh
from worldtree.ops.connection import Connection
from worldtree.ops.facts.packages import (
    apk_installed,
    apt_candidates,
    canonical,
    dpkg_installed,
    pip_installed,
    require_tool,
    rpm_installed,
)
from worldtree.ops.operation import Args, Operation, OpError, Planned, RollbackUnavailable

__all__ = ["PackageApk", "PackageApt", "PackageDnf", "PackagePip"]

State = Literal["present", "absent", "latest"]
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9+._-]*")


class PackageArgs(Args):
    name: list[str]
    state: State = "present"
    update_cache: bool = False

    @field_validator("name", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        names = [value] if isinstance(value, str) else value
        if isinstance(names, list):
            for n in names:
                if not isinstance(n, str) or not _NAME.fullmatch(n):
                    raise ValueError(f"{n!r} is not a package name")
            if not names:
                raise ValueError("give at least one package name")
        return names


@dataclass
class Packages:
    """Installed versions of the named packages before the change, and what the change will be."""

    before: dict[str, str]
    install: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    upgrade: dict[str, str] = field(default_factory=dict)  # name -> version it goes to ("" unknown)
    unknown: str | None = None


async def _exec(conn: Connection, command: ShellCommand, what: str) -> None:
    result = await conn.run(command)
    if result.exit_status != 0:
        tail = " | ".join((result.stderr.strip() or result.stdout.strip())[-400:].splitlines())
        raise OpError(f"{what} on {conn.name}: `{command.display()}` exited {result.exit_status}"
                      + (f": {tail}" if tail else ""))


class _System(Operation):
    """A system package manager; subclasses give the tool, the fact reader and the command lines."""

    tool: ClassVar[str]
    pins: ClassVar[bool] = False  # can install an exact recorded version (rollback of upgrade/remove)
    args: PackageArgs
    args_model = PackageArgs

    async def installed(self, conn: Connection, names: list[str]) -> dict[str, str]:
        raise NotImplementedError

    async def candidates(self, conn: Connection, names: list[str]) -> dict[str, str] | None:
        """Newest installable versions, or None when this manager cannot tell without side effects."""
        return None

    def install_cmd(self, specs: list[str]) -> ShellCommand:
        raise NotImplementedError

    def remove_cmd(self, names: list[str]) -> ShellCommand:
        raise NotImplementedError

    def update_cmd(self) -> ShellCommand:
        raise NotImplementedError

    def pinned(self, name: str, version: str) -> str:
        return name

    async def precheck(self, conn: Connection) -> Packages:
        await require_tool(conn, self.name, self.tool)
        a = self.args
        state = Packages(await self.installed(conn, a.name))
        if a.state == "absent":
            state.remove = [n for n in a.name if n in state.before]
            return state
        state.install = [n for n in a.name if n not in state.before]
        if a.state == "latest":
            present = [n for n in a.name if n in state.before]
            if present and a.update_cache:
                state.unknown = "the newest versions are known after the cache update"
                state.upgrade = dict.fromkeys(present, "")
            elif present:
                found = await self.candidates(conn, present)
                if found is None:
                    state.unknown = f"{self.tool} decides whether a newer version exists"
                    state.upgrade = dict.fromkeys(present, "")
                else:
                    state.upgrade = {n: v for n, v in found.items() if v and v != state.before[n]}
        return state

    def plan(self, state: Packages) -> Planned:
        a = self.args
        parts = []
        if state.install:
            parts.append("install " + ", ".join(state.install))
        if state.remove:
            parts.append("remove " + ", ".join(f"{n} {state.before[n]}".strip() for n in state.remove))
        if state.upgrade:
            parts.append("upgrade " + ", ".join(f"{n} {state.before[n]} -> {v or 'newest'}".replace("  ", " ")
                                                 for n, v in state.upgrade.items()))
        rollback = not ((state.upgrade or state.remove) and not self.pins)
        if not parts:
            shown = ", ".join(f"{n} {state.before.get(n, '')}".strip() for n in a.name)
            return Planned("none", f"{shown} {'not installed' if a.state == 'absent' else 'installed'}"
                                   + (" at the newest version" if a.state == "latest" else ""))
        refresh = a.update_cache and bool(state.install or state.upgrade)
        text = "; ".join(parts) + (f" (after `{self.update_cmd().display()}`)" if refresh else "")
        if state.unknown and not state.install:
            return Planned("unknown", f"{text}: {state.unknown}", rollback=rollback)
        return Planned("change", text, rollback=rollback)

    async def run(self, conn: Connection, state: Packages) -> Packages:
        a = self.args
        if a.update_cache and (state.install or state.upgrade):
            await _exec(conn, self.update_cmd(), self.name)
        if state.remove:
            await _exec(conn, self.remove_cmd(state.remove), self.name)
        targets = state.install + list(state.upgrade)
        if targets:
            await _exec(conn, self.install_cmd(targets), self.name)
        return state

    async def rollback(self, conn: Connection, record: Packages) -> None:
        if (record.upgrade or record.remove) and not self.pins:
            raise RollbackUnavailable(f"{self.tool} cannot reinstall the recorded versions")
        if record.install:
            await _exec(conn, self.remove_cmd(record.install), f"{self.name} rollback")
        back = [self.pinned(n, record.before[n]) for n in (*record.remove, *record.upgrade)]
        if back:
            await _exec(conn, self.install_cmd(back), f"{self.name} rollback")


class PackageApt(_System):
    """``package.apt``: Debian/Ubuntu packages through ``apt-get`` (facts from ``dpkg-query``)."""

    name = "package.apt"
    tool = "apt-get"
    pins = True
    _ENV = "DEBIAN_FRONTEND=noninteractive"

    async def installed(self, conn: Connection, names: list[str]) -> dict[str, str]:
        return await dpkg_installed(conn, names)

    async def candidates(self, conn: Connection, names: list[str]) -> dict[str, str] | None:
        return await apt_candidates(conn, names)

    def install_cmd(self, specs: list[str]) -> ShellCommand:
        return sh(self._ENV, "apt-get install -y -q --no-install-recommends --allow-downgrades --",
                  *map(Quoted, specs))

    def remove_cmd(self, names: list[str]) -> ShellCommand:
        return sh(self._ENV, "apt-get remove -y -q --", *map(Quoted, names))

    def update_cmd(self) -> ShellCommand:
        return sh(self._ENV, "apt-get update -q")

    def pinned(self, name: str, version: str) -> str:
        return f"{name}={version}"


class PackageDnf(_System):
    """``package.dnf``: Fedora/RHEL packages through ``dnf`` (facts from ``rpm -q``)."""

    name = "package.dnf"
    tool = "dnf"
    pins = True

    async def installed(self, conn: Connection, names: list[str]) -> dict[str, str]:
        return await rpm_installed(conn, names)

    def install_cmd(self, specs: list[str]) -> ShellCommand:
        return sh("dnf install -y -q --", *map(Quoted, specs))

    def remove_cmd(self, names: list[str]) -> ShellCommand:
        return sh("dnf remove -y -q --", *map(Quoted, names))

    def update_cmd(self) -> ShellCommand:
        return sh("dnf makecache -q")

    def pinned(self, name: str, version: str) -> str:
        return f"{name}-{version}"


class PackageApk(_System):
    """``package.apk``: Alpine packages through ``apk`` (facts from ``apk info -e``)."""

    name = "package.apk"
    tool = "apk"

    async def installed(self, conn: Connection, names: list[str]) -> dict[str, str]:
        return await apk_installed(conn, names)

    def install_cmd(self, specs: list[str]) -> ShellCommand:
        return sh("apk add -q --", *map(Quoted, specs))

    def remove_cmd(self, names: list[str]) -> ShellCommand:
        return sh("apk del -q --", *map(Quoted, names))

    def update_cmd(self) -> ShellCommand:
        return sh("apk update -q")


_REQ = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:==([A-Za-z0-9.+!_-]+))?")


class PipArgs(Args):
    #: project names, optionally pinned (``requests==2.32.3``)
    name: list[str]
    virtualenv: str
    state: State = "present"
    #: a local folder or URL of wheels/sdists (``--find-links``); with ``no_index`` nothing else is used
    find_links: str | None = None
    no_index: bool = False

    @field_validator("name", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        names = [value] if isinstance(value, str) else value
        if isinstance(names, list):
            for n in names:
                if not isinstance(n, str) or not _REQ.fullmatch(n):
                    raise ValueError(f"{n!r} is not a project name (optionally with ==VERSION)")
        return names

    @field_validator("virtualenv")
    @classmethod
    def _venv(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"{value!r} is not an absolute path")
        return posixpath.normpath(value)


class PackagePip(Operation):
    """``package.pip``: Python projects in the virtualenv ``virtualenv`` (its own ``bin/python -m pip``)."""

    name = "package.pip"
    args_model = PipArgs
    args: PipArgs

    @property
    def python(self) -> str:
        return posixpath.join(self.args.virtualenv, "bin", "python")

    def _wanted(self) -> list[tuple[str, str | None]]:
        out = []
        for spec in self.args.name:
            m = _REQ.fullmatch(spec)
            assert m is not None
            out.append((canonical(m.group(1)), m.group(2)))
        return out

    async def precheck(self, conn: Connection) -> Packages:
        if not (await conn.stat(self.python)).exists:
            raise OpError(f"package.pip: no virtualenv at {self.args.virtualenv} on {conn.name} ({self.python} is "
                          f"missing); create it first (command: python3 -m venv {self.args.virtualenv})")
        have = await pip_installed(conn, self.python)
        state = Packages({n: have[n] for n, _ in self._wanted() if n in have})
        a = self.args
        for name, version in self._wanted():
            if a.state == "absent":
                if name in have:
                    state.remove.append(name)
            elif name not in have:
                state.install.append(f"{name}=={version}" if version else name)
            elif version and have[name] != version:
                state.upgrade[name] = version
            elif a.state == "latest" and not version:
                state.upgrade[name] = ""
                state.unknown = "pip decides whether a newer version exists"
        return state

    def plan(self, state: Packages) -> Planned:
        parts = []
        if state.install:
            parts.append("pip install " + ", ".join(state.install))
        if state.remove:
            parts.append("pip uninstall " + ", ".join(f"{n} {state.before[n]}" for n in state.remove))
        if state.upgrade:
            parts.append("pip install " + ", ".join(f"{n} {state.before[n]} -> {v or 'newest'}"
                                                     for n, v in state.upgrade.items()))
        where = f" in {self.args.virtualenv}"
        if not parts:
            shown = ", ".join(f"{n} {state.before.get(n, '')}".strip() for n, _ in self._wanted())
            return Planned("none", f"{shown} {'not installed' if self.args.state == 'absent' else 'installed'}{where}")
        text = "; ".join(parts) + where
        if state.unknown and not state.install and all(not v for v in state.upgrade.values()):
            return Planned("unknown", f"{text}: {state.unknown}")
        return Planned("change", text)

    def _pip(self, *parts: Any) -> ShellCommand:
        a = self.args
        source: list[Any] = []
        if parts[0] != "install":  # uninstall takes no source options
            pass
        elif a.find_links:
            source += ["--find-links", Quoted(a.find_links)]
        if a.no_index and parts[0] == "install":
            source.append("--no-index")
        return sh(Quoted(self.python), "-m pip --disable-pip-version-check -q", *parts[:1], *source, *parts[1:])

    async def run(self, conn: Connection, state: Packages) -> Packages:
        if state.remove:
            await _exec(conn, self._pip("uninstall", "-y", *map(Quoted, state.remove)), self.name)
        upgrades = [f"{n}=={v}" if v else n for n, v in state.upgrade.items()]
        if state.install or upgrades:
            flag = ["--upgrade"] if any(not v for v in state.upgrade.values()) else []
            await _exec(conn, self._pip("install", *flag, *map(Quoted, state.install + upgrades)), self.name)
        return state

    async def rollback(self, conn: Connection, record: Packages) -> None:
        installed = [re.split("==", s)[0] for s in record.install]
        if installed:
            await _exec(conn, self._pip("uninstall", "-y", *map(Quoted, installed)), f"{self.name} rollback")
        back = [f"{n}=={record.before[n]}" for n in (*record.remove, *record.upgrade)]
        if back:
            await _exec(conn, self._pip("install", *map(Quoted, back)), f"{self.name} rollback")
