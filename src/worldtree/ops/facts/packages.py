"""Package facts: which packages are installed (and at which version), per package manager.

One command per operation and host: ``dpkg-query`` (Debian), ``rpm -q`` (Fedora/RHEL),
``apk info`` (Alpine), ``pip list --format json`` (a virtualenv). A missing tool is reported
with the manager the host does have, so ``package.dnf`` on Debian says to use ``package.apt``.
"""

from __future__ import annotations

import json
import re

from worldtree.ops.command import Quoted, sh
from worldtree.ops.connection import Connection
from worldtree.ops.operation import OpError

__all__ = ["apk_installed", "apt_candidates", "dpkg_installed", "pip_installed", "require_tool", "rpm_installed"]

#: manager -> (the tool its operation needs, the operation, the distributions that use it)
MANAGERS = {"apt-get": ("package.apt", "Debian/Ubuntu"), "dnf": ("package.dnf", "Fedora/RHEL"),
            "apk": ("package.apk", "Alpine")}


async def require_tool(conn: Connection, op: str, tool: str) -> None:
    """An error naming what the host has instead when ``tool`` is missing."""
    result = await conn.run(sh("for t in apt-get dnf apk; do command -v $t >/dev/null 2>&1 && echo $t; done"))
    present = result.stdout.split()
    if tool in present:
        return
    hint = "; ".join(f"use {MANAGERS[t][0]} for {MANAGERS[t][1]}" for t in present) or "no package manager found"
    raise OpError(f"{op}: {tool} not found on {conn.name}; {hint}")


async def dpkg_installed(conn: Connection, names: list[str]) -> dict[str, str]:
    """name -> installed version (names not installed are absent from the result)."""
    result = await conn.run(sh("dpkg-query -W -f='${Package}\\t${db:Status-Abbrev}\\t${Version}\\n' --",
                               *map(Quoted, names), "2>/dev/null"))
    out = {}
    for line in result.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1].startswith("ii"):
            out[parts[0].split(":")[0]] = parts[2]
    return out


async def apt_candidates(conn: Connection, names: list[str]) -> dict[str, str]:
    """name -> the version ``apt-get install`` would pick now (from the current cache)."""
    result = await conn.run(sh("LC_ALL=C apt-cache policy --", *map(Quoted, names)))
    out: dict[str, str] = {}
    current = None
    for line in result.stdout.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            current = line[:-1].split(":")[0]
        elif current and line.strip().startswith("Candidate:"):
            value = line.split(":", 1)[1].strip()
            if value != "(none)":
                out[current] = value
    return out


async def rpm_installed(conn: Connection, names: list[str]) -> dict[str, str]:
    result = await conn.run(sh("rpm -q --qf '%{NAME}\\t%{VERSION}-%{RELEASE}\\n' --", *map(Quoted, names),
                               "2>/dev/null"))
    return dict(line.split("\t", 1) for line in result.stdout.splitlines() if "\t" in line)


async def apk_installed(conn: Connection, names: list[str]) -> dict[str, str]:
    result = await conn.run(sh("apk info -e --", *map(Quoted, names), "2>/dev/null"))
    return {name: "" for name in result.stdout.split() if name in names}


def canonical(name: str) -> str:
    """PEP 503's normal form: ``Foo_Bar`` and ``foo-bar`` are one project."""
    return re.sub(r"[-_.]+", "-", name).lower()


#: what ``pip list`` reports, read by the interpreter itself (``importlib.metadata``): ~20x faster
#: than starting pip, which matters because precheck runs twice per apply
_LIST = ("import importlib.metadata as m, json; print(json.dumps([[d.metadata['Name'], d.version] "
         "for d in m.distributions() if d.metadata['Name']]))")


async def pip_installed(conn: Connection, python: str) -> dict[str, str]:
    result = await conn.run(sh(Quoted(python), "-c", Quoted(_LIST)))
    if result.exit_status != 0:
        raise OpError(f"listing the projects of {python} on {conn.name} exited {result.exit_status}: "
                      f"{result.stderr.strip()[-200:]}")
    try:
        rows = json.loads(result.stdout or "[]")
    except json.JSONDecodeError:
        raise OpError(f"listing the projects of {python} on {conn.name} did not print JSON") from None
    return {canonical(name): version for name, version in rows}
