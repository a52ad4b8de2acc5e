"""systemd unit facts: is the host run by systemd, and a unit's load, active and enabled states.

``systemctl is-system-running`` answers ``offline`` (and ``systemctl`` exits non-zero) where
systemd is installed but is not PID 1 (containers, this project's CI machine): that is the
"no systemd" case, reported as one clear error instead of the bus error every later call would
print.
"""

from __future__ import annotations

from dataclasses import dataclass

from worldtree.ops.command import Quoted, sh
from worldtree.ops.connection import Connection
from worldtree.ops.operation import OpError

__all__ = ["UnitState", "require_systemd", "unit_state"]

#: answers of ``is-system-running`` that mean systemd manages the host
_RUNNING = {"running", "degraded", "starting", "initializing", "maintenance", "stopping"}


@dataclass(frozen=True, slots=True)
class UnitState:
    name: str
    load: str
    active: str
    enabled: str

    @property
    def running(self) -> bool:
        return self.active in ("active", "activating", "reloading")

    @property
    def is_enabled(self) -> bool:
        return self.enabled in ("enabled", "enabled-runtime", "alias", "static", "indirect", "generated")


async def require_systemd(conn: Connection, op: str) -> None:
    result = await conn.run(sh("systemctl is-system-running 2>&1"))
    state = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    if result.exit_status == 127:
        raise OpError(f"{op}: systemctl not found on {conn.name}; this host has no systemd (manage the "
                      "service with `command`)")
    if state not in _RUNNING:
        raise OpError(f"{op}: {conn.name} is not run by systemd (systemctl says {state or 'nothing'!r}); "
                      "manage the service with `command` there")


async def unit_state(conn: Connection, unit: str, op: str) -> UnitState:
    """The unit's states; an error when systemd does not know it."""
    result = await conn.run(sh("systemctl show --property=LoadState,ActiveState,UnitFileState --", Quoted(unit)))
    if result.exit_status != 0:
        raise OpError(f"{op}: systemctl show {unit} on {conn.name} exited {result.exit_status}: "
                      f"{result.stderr.strip()[-200:]}")
    values = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    state = UnitState(unit, values.get("LoadState", ""), values.get("ActiveState", ""),
                      values.get("UnitFileState", ""))
    if state.load == "not-found":
        raise OpError(f"{op}: unit {unit} not found on {conn.name}; install its package first")
    return state
