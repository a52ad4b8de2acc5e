"""The ``ssh`` backend: run a node's command on a remote host over a pooled asyncssh connection.

Follows :mod:`worldtree.backends.base`. A node's host is either its ``engine`` URL
(:mod:`.target`) or, after fan-out, ``target.host``: a name in the run's inventory
(``RunContext.config["inventory"]``: an :class:`~worldtree.ops.inventory.Inventory` or a path).
What runs remotely is in :mod:`.remote`; connection settings are in :mod:`.pool`.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace
from pathlib import Path

import asyncssh

from worldtree.backends import child_env
from worldtree.backends.base import OutputSink, RunContext, StepRequest, output_room
from worldtree.backends.spawn import LineSplitter
from worldtree.backends.ssh import remote
from worldtree.connectors.ssh import transfer
from worldtree.connectors.ssh.pool import SshPool, open_channel, translate_error
from worldtree.connectors.ssh.target import SshTarget, parse_engine_url
from worldtree.errors import BackendError
from worldtree.ops.facts.host import HostFacts, host_facts
from worldtree.ops.inventory import Inventory, load_inventory

__all__ = ["SshBackend"]

_READ = 1 << 16
_LOCAL_ONLY = {"HOME", "PATH", "SHELL", "USER", "LOGNAME", "PWD", "OLDPWD", "SHLVL", "TMPDIR", "HOSTNAME",
               "MAIL", "TERM", "_"}


class SshBackend:
    """One per run; ``execute`` is safe to call concurrently, ``close`` ends every connection."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.pool = SshPool(ctx.config, ctx.secret_values)
        self._inventory: Inventory | None = None
        self._kills: set[asyncio.Task[None]] = set()
        self._warmed = False

    # -- targets -------------------------------------------------------------------------
    def inventory(self) -> Inventory:
        if self._inventory is None:
            value = self.ctx.config.get("inventory")
            if isinstance(value, Inventory):
                self._inventory = value
            elif isinstance(value, str | Path):
                self._inventory = load_inventory(value)
            else:
                raise BackendError("a node runs on an inventory host, but the run has no inventory: set "
                                   "`inventory:` in the pipeline or pass --inventory")
        return self._inventory

    def target(self, req: StepRequest) -> SshTarget:
        """Where ``req`` runs, with ``${NAME}`` references expanded from ``req.env``."""
        spec = req.node.target
        if spec.host and spec.engine:  # fanned out: the URL holds the host's settings
            return replace(parse_engine_url(spec.engine, req.env), label=spec.host)
        if spec.host:
            inventory = self.inventory()
            if spec.host not in inventory.hosts:
                raise BackendError(f"host {spec.host!r} is not in inventory {inventory.source}")
            return inventory.target(spec.host, req.env)
        if spec.engine:
            return parse_engine_url(spec.engine, req.env)
        raise BackendError(f"step {req.node.path}: an ssh step needs `engine: ssh://…` or a job `hosts:`")

    def _env(self, req: StepRequest) -> dict[str, str]:
        own = child_env.inherited(os.environ, "all")  # never worldtree's own variables (store URL, ...)
        if self.ctx.allow_all_env:  # minus what describes this machine, not the remote one
            base = {k: v for k, v in own.items() if k not in _LOCAL_ONLY and not k.startswith(("SSH_", "XDG_"))}
        else:
            base = {k: own[k] for k in self.ctx.allow_env if k in own}
        return {**base, **req.env}

    # -- the contract --------------------------------------------------------------------
    def _prewarm(self) -> None:
        """Connect to every SSH host of the graph in the background, on the first step (the
        factory must not do I/O). Hosts whose URL needs a secret connect when first used."""
        self._warmed = True
        targets = []
        for n in self.ctx.graph.nodes:
            if n.target.kind == "ssh" and n.target.engine:
                with suppress(BackendError):
                    target = parse_engine_url(n.target.engine, {})
                    targets.append(replace(target, label=n.target.host) if n.target.host else target)
        self.pool.prewarm(targets)

    async def execute(self, req: StepRequest, output: OutputSink) -> int:
        if not self._warmed and self.ctx.config.get("ssh_prewarm", True):
            self._prewarm()
        target = self.target(req)
        script = remote.build_script(req.command, self._env(req), shell=req.node.shell,
                                     node_workdir=req.node.workdir, run_workdir=req.workdir)
        async with self.pool.session(target) as conn:
            try:
                proc = await open_channel(conn, lambda: conn.create_process(
                    remote.CHANNEL_COMMAND, encoding=None))
            except (asyncssh.Error, OSError) as exc:
                raise translate_error(exc, target, self.ctx.secret_values) from None
            pid: asyncio.Future[int] = asyncio.get_running_loop().create_future()

            def stdout(line: str) -> None:
                if not pid.done():  # the first line is the marker with the remote PID
                    found = remote.parse_pid(line)
                    if found is not None:
                        pid.set_result(found)
                        return
                output("stdout", line)

            needles = self.ctx.secret_values
            paused = self.ctx.output_paused
            pumps = [asyncio.ensure_future(_pump(proc.stdout, LineSplitter(stdout, needles), paused)),
                     asyncio.ensure_future(_pump(proc.stderr, LineSplitter(
                         lambda line: output("stderr", line), needles), paused))]
            try:
                proc.stdin.write(script.encode())
                proc.stdin.write_eof()
                await asyncio.wait(pumps)
                await proc.wait_closed()
            except asyncio.CancelledError:
                kill = asyncio.ensure_future(self._stop(target, proc, pid, pumps))
                self._kills.add(kill)
                kill.add_done_callback(self._kills.discard)
                await asyncio.shield(kill)
                raise
            except (asyncssh.Error, OSError) as exc:
                raise translate_error(exc, target, self.ctx.secret_values) from None
            finally:
                for pump in pumps:
                    pump.cancel()
            for pump in pumps:  # surface an error a pump hit (not expected; output is best-effort)
                if not pump.cancelled() and pump.exception() is not None:
                    raise BackendError(f"ssh {target.label}: reading output failed") from pump.exception()
            return _exit_code(proc, target)

    async def _stop(self, target: SshTarget, proc: asyncssh.SSHClientProcess[bytes],
                    pid: asyncio.Future[int], pumps: list[asyncio.Task[None]]) -> None:
        """Kill the remote process group (TERM, then KILL after the grace period), then the channel."""
        grace = self.ctx.grace_seconds
        try:
            pgid = await asyncio.wait_for(asyncio.shield(pid), timeout=max(grace, 2.0))
        except (TimeoutError, asyncio.CancelledError):
            pgid = None
        try:
            if pgid is not None:
                async with self.pool.session(target, control=True) as conn:
                    kill = remote.kill_command(pgid, grace)
                    await asyncio.wait_for(open_channel(conn, lambda: conn.run(kill, check=False)),
                                           timeout=grace + 10)
        except (TimeoutError, Exception):
            pass
        finally:
            for pump in pumps:
                pump.cancel()
            proc.close()

    async def close(self) -> None:
        if self._kills:
            await asyncio.gather(*list(self._kills), return_exceptions=True)
        await self.pool.close()

    # -- files and facts, for operations and artifacts -----------------------------------
    async def facts(self, target: SshTarget) -> HostFacts:
        """Facts of ``target``, gathered once per run over this run's pool."""
        return await host_facts(self.pool, target)

    async def upload(self, target: SshTarget, local: str | Path, remote_path: str, *,
                     mode: int | None = None) -> None:
        async with self.pool.session(target) as conn:
            await transfer.upload(conn, target, local, remote_path, mode=mode)

    async def download(self, target: SshTarget, remote_path: str, local: str | Path) -> None:
        async with self.pool.session(target) as conn:
            await transfer.download(conn, target, remote_path, local)


async def _pump(reader: asyncssh.SSHReader[bytes], splitter: LineSplitter,
                paused: Callable[[], bool] | None = None) -> None:
    """Bytes as they come, through the one line splitter (line limit, secret-safe cuts): a
    remote process printing one endless line costs LINE_LIMIT of memory, not all of it. While
    the store is behind, reading waits (SSH flow control then slows the remote process)."""
    while chunk := await reader.read(_READ):
        splitter.feed(chunk)
        await output_room(paused)
    splitter.close()


def _exit_code(proc: asyncssh.SSHClientProcess[bytes], target: SshTarget) -> int:
    if proc.exit_signal is not None:
        name = proc.exit_signal[0]
        try:
            return 128 + int(signal.Signals["SIG" + name])
        except KeyError:
            return 255
    if proc.exit_status is None or proc.exit_status < 0:
        raise BackendError(f"ssh {target.label}: the connection closed before the command reported an exit "
                           "code")
    return int(proc.exit_status)
