"""systemd services: ``service.started``, ``service.stopped``, ``service.restarted``, ``service.enabled``.

Precheck asks ``systemctl`` (a host without systemd as PID 1 is an error naming the host, before
anything runs); plan compares the unit's active/enabled state; run calls ``systemctl
start|stop|restart|enable|disable``; rollback puts the recorded state back (a unit started is
stopped again, one enabled is disabled). A restart cannot be undone: its plan says
``rollback: unavailable``.
"""

from __future__ import annotations

from pydantic import field_validator

from worldtree.ops.command import Quoted, sh
from worldtree.ops.connection import Connection
from worldtree.ops.facts.services import UnitState, require_systemd, unit_state
from worldtree.ops.operation import Args, Operation, OpError, Planned, RollbackUnavailable

__all__ = ["ServiceEnabled", "ServiceRestarted", "ServiceStarted", "ServiceStopped"]


class ServiceArgs(Args):
    name: str

    @field_validator("name")
    @classmethod
    def _unit(cls, value: str) -> str:
        if not value or value.startswith("-") or any(c.isspace() or c in "/\0" for c in value):
            raise ValueError(f"{value!r} is not a unit name (e.g. nginx or nginx.service)")
        return value


class EnabledArgs(ServiceArgs):
    #: false: the unit is disabled
    enabled: bool = True


async def _systemctl(conn: Connection, verb: str, unit: str) -> None:
    result = await conn.run(sh("systemctl", verb, "--", Quoted(unit)))
    if result.exit_status != 0:
        tail = " | ".join(result.stderr.strip()[-300:].splitlines())
        raise OpError(f"systemctl {verb} {unit} on {conn.name} exited {result.exit_status}"
                      + (f": {tail}" if tail else ""))


class _Service(Operation):
    args: ServiceArgs

    async def precheck(self, conn: Connection) -> UnitState:
        await require_systemd(conn, self.name)
        return await unit_state(conn, self.args.name, self.name)


class ServiceStarted(_Service):
    """``service.started``: the unit is active."""

    name = "service.started"
    args_model = ServiceArgs

    def plan(self, state: UnitState) -> Planned:
        if state.running:
            return Planned("none", f"{state.name} is {state.active}")
        return Planned("change", f"systemctl start {state.name} (now {state.active})")

    async def run(self, conn: Connection, state: UnitState) -> UnitState:
        await _systemctl(conn, "start", self.args.name)
        return state

    async def rollback(self, conn: Connection, record: UnitState) -> None:
        if not record.running:
            await _systemctl(conn, "stop", self.args.name)


class ServiceStopped(_Service):
    """``service.stopped``: the unit is not active."""

    name = "service.stopped"
    args_model = ServiceArgs

    def plan(self, state: UnitState) -> Planned:
        if not state.running:
            return Planned("none", f"{state.name} is {state.active}")
        return Planned("change", f"systemctl stop {state.name} (now {state.active})")

    async def run(self, conn: Connection, state: UnitState) -> UnitState:
        await _systemctl(conn, "stop", self.args.name)
        return state

    async def rollback(self, conn: Connection, record: UnitState) -> None:
        if record.running:
            await _systemctl(conn, "start", self.args.name)


class ServiceRestarted(_Service):
    """``service.restarted``: always restarts (a handler's usual job); nothing to undo."""

    name = "service.restarted"
    args_model = ServiceArgs

    def plan(self, state: UnitState) -> Planned:
        return Planned("change", f"systemctl restart {state.name} (now {state.active})", rollback=False)

    async def run(self, conn: Connection, state: UnitState) -> UnitState:
        await _systemctl(conn, "restart", self.args.name)
        return state

    async def rollback(self, conn: Connection, record: UnitState) -> None:
        raise RollbackUnavailable(f"a restart of {self.args.name} cannot be undone")


class ServiceEnabled(_Service):
    """``service.enabled``: the unit starts at boot (``enabled: false``: it does not)."""

    name = "service.enabled"
    args_model = EnabledArgs
    args: EnabledArgs

    def plan(self, state: UnitState) -> Planned:
        want = self.args.enabled
        if state.is_enabled == want:
            return Planned("none", f"{state.name} is {state.enabled}")
        verb = "enable" if want else "disable"
        return Planned("change", f"systemctl {verb} {state.name} (now {state.enabled or 'unknown'})")

    async def run(self, conn: Connection, state: UnitState) -> UnitState:
        await _systemctl(conn, "enable" if self.args.enabled else "disable", self.args.name)
        return state

    async def rollback(self, conn: Connection, record: UnitState) -> None:
        await _systemctl(conn, "enable" if record.is_enabled else "disable", self.args.name)
