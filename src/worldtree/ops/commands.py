"""``command``: run a shell line on the host, guarded by ``creates``/``removes``/``precheck``.

Without a guard a command always runs, and the plan says so. Its rollback is the task's
``rollback:`` line when given (``./migrate-down.sh``), else ``rollback: unavailable``.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator

from worldtree.ops.command import ShellCommand, sh
from worldtree.ops.connection import Connection
from worldtree.ops.operation import Args, Operation, OpError, Planned, RollbackUnavailable

__all__ = ["Command"]


class CommandArgs(Args):
    run: str
    creates: str | None = None
    removes: str | None = None
    precheck: str | None = None
    chdir: str | None = None
    timeout: float | None = Field(default=None, gt=0)

    @field_validator("creates", "removes", "chdir")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"{value!r} is not an absolute path")
        return None if value is None else posixpath.normpath(value)


@dataclass(frozen=True, slots=True)
class Guard:
    """Why the command need not run (None: it must)."""

    done: str | None


class Command(Operation):
    name = "command"
    args_model = CommandArgs
    args: CommandArgs

    def _line(self, text: str) -> ShellCommand:
        secrets = tuple(self.context.extra.get("secrets", ()))
        if self.args.chdir:
            from worldtree.ops.command import Quoted

            return sh("cd", Quoted(self.args.chdir), "&&", text, secrets=secrets)
        return sh(text, secrets=secrets)

    def writes(self) -> list[str]:
        return [p for p in (self.args.creates, self.args.removes) if p]

    async def precheck(self, conn: Connection) -> Guard:
        a = self.args
        if a.creates and (await conn.stat(a.creates)).exists:
            return Guard(f"{a.creates} exists")
        if a.removes and not (await conn.stat(a.removes)).exists:
            return Guard(f"{a.removes} does not exist")
        if a.precheck:
            result = await conn.run(self._line(a.precheck), timeout=a.timeout)
            if result.exit_status == 0:
                return Guard(f"precheck `{self._line(a.precheck).display()}` succeeded")
        return Guard(None)

    def plan(self, state: Guard) -> Planned:
        if state.done:
            return Planned("none", state.done)
        rollback = self.context.extra.get("rollback")
        return Planned("change", f"run `{self._line(self.args.run).display()}`", rollback=bool(rollback))

    async def run(self, conn: Connection, state: Guard) -> Any:
        await self._exec(conn, self.args.run)
        return None

    async def rollback(self, conn: Connection, record: Any) -> None:
        rollback = self.context.extra.get("rollback")
        if not rollback:
            raise RollbackUnavailable("this command has no `rollback:`")
        await self._exec(conn, rollback)

    async def _exec(self, conn: Connection, text: str) -> None:
        command = self._line(text)
        result = await conn.run(command, timeout=self.args.timeout)
        if result.exit_status != 0:
            tail = " | ".join((result.stderr.strip() or result.stdout.strip())[-400:].splitlines())
            for secret in command.secrets:
                tail = tail.replace(secret, "***") if len(secret) >= 3 else tail
            raise OpError(f"`{command.display()}` exited {result.exit_status}" + (f": {tail}" if tail else ""))
