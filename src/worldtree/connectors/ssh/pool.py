"""A run's SSH connections: one per endpoint, opened on first use, shared by every step.

Concurrency: any number of tasks may ask for the same target at once; they all await the
one connection attempt. A failed attempt is forgotten, so a retried node connects afresh; a
connection that dropped is replaced on next use. Channels per connection are capped below
OpenSSH's ``MaxSessions`` (10 by default; ``ssh_max_sessions`` in the config), with one slot
kept for control channels (killing a remote process, facts), so a kill is never queued
behind the steps it is meant to stop.

Settings (``RunContext.config`` keys, else environment variables):

=====================  ===========================  ======================================
config key             environment                  meaning
=====================  ===========================  ======================================
ssh_insecure           WORLDTREE_SSH_INSECURE=1     skip known_hosts checking (not default)
ssh_known_hosts        WORLDTREE_SSH_KNOWN_HOSTS    known_hosts file (default: ssh's)
ssh_config             WORLDTREE_SSH_CONFIG         ssh_config file (default ~/.ssh/config)
ssh_connect_timeout    WORLDTREE_SSH_CONNECT_TIMEOUT seconds (default 10)
ssh_keepalive          WORLDTREE_SSH_KEEPALIVE      keepalive interval seconds (default 15)
ssh_max_sessions       WORLDTREE_SSH_MAX_SESSIONS   channels per connection (default 10)
ssh_ciphers            WORLDTREE_SSH_CIPHERS        comma-separated cipher preference
=====================  ===========================  ======================================

Ciphers: AES-GCM first (AES-NI makes it several times cheaper per packet than asyncssh's
default ChaCha20-Poly1305, which matters for many short steps), the rest of asyncssh's
defaults after it. Key exchange is left to asyncssh and the server (post-quantum hybrids
first): it costs once per host per run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncssh

from worldtree.connectors.ssh.target import SshTarget
from worldtree.errors import BackendError, ConnectError

__all__ = ["CIPHERS", "SshPool", "open_channel", "translate_error"]

T = TypeVar("T")
# asyncssh logs every channel at INFO; a run's log is the steps' output, not that
if logging.getLogger("asyncssh").level == logging.NOTSET:
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
_TRUE = {"1", "true", "yes", "on"}
CIPHERS = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com",
           "aes256-ctr", "aes192-ctr", "aes128-ctr"]


def _setting(config: Mapping[str, object], key: str, env: str, default: Any = None) -> Any:
    if config.get(key) is not None:
        return config[key]
    value = os.environ.get(env)
    return value if value not in (None, "") else default


class SshPool:
    """Connections of one run, keyed by :meth:`SshTarget.pool_key`; ``close()`` ends them all."""

    def __init__(self, config: Mapping[str, object] | None = None,
                 secret_values: list[str] | None = None) -> None:
        config = config or {}
        self.insecure = str(_setting(config, "ssh_insecure", "WORLDTREE_SSH_INSECURE", "")).lower() in _TRUE
        self.known_hosts: str | None = _setting(config, "ssh_known_hosts", "WORLDTREE_SSH_KNOWN_HOSTS")
        self.ssh_config: str | None = _setting(config, "ssh_config", "WORLDTREE_SSH_CONFIG")
        self.connect_timeout = float(
            _setting(config, "ssh_connect_timeout", "WORLDTREE_SSH_CONNECT_TIMEOUT", 10))
        self.keepalive = float(_setting(config, "ssh_keepalive", "WORLDTREE_SSH_KEEPALIVE", 15))
        self.max_sessions = max(
            2, int(_setting(config, "ssh_max_sessions", "WORLDTREE_SSH_MAX_SESSIONS", 10)))
        ciphers = _setting(config, "ssh_ciphers", "WORLDTREE_SSH_CIPHERS", CIPHERS)
        self.ciphers = [c.strip() for c in ciphers.split(",")] if isinstance(ciphers, str) else list(ciphers)
        self.secret_values = list(secret_values or [])
        #: connections opened so far (a test and the benchmark read it)
        self.opened = 0
        #: run-scoped cache for facts and other per-host reads (seed 001's "scoped cache")
        self.cache: dict[tuple[object, ...], object] = {}
        self._conns: dict[tuple[object, ...], asyncio.Task[asyncssh.SSHClientConnection]] = {}
        self._steps: dict[tuple[object, ...], asyncio.Semaphore] = {}
        self._control: dict[tuple[object, ...], asyncio.Semaphore] = {}
        self._prewarmed: set[tuple[object, ...]] = set()
        #: handshakes at once: a run over hundreds of hosts must not open them all in one burst
        self._handshakes = asyncio.Semaphore(32)
        self._closed = False

    def prewarm(self, targets: Iterable[SshTarget]) -> None:
        """Start connecting to ``targets`` in the background (seed 001: connect every host at
        start-up, concurrently). The first step that needs a host whose attempt failed gets
        that error; later ones try again."""
        for target in targets:
            key = target.pool_key()
            if key not in self._conns and not self._closed:
                task = asyncio.ensure_future(self._connect(target))
                task.add_done_callback(_retrieve)
                self._conns[key] = task
                self._prewarmed.add(key)

    async def connection(self, target: SshTarget) -> asyncssh.SSHClientConnection:
        """The open connection to ``target``, connecting once; ConnectError naming the host."""
        if self._closed:
            raise BackendError(f"ssh {target.label}: the run's SSH connections are already closed")
        key = target.pool_key()
        task = self._conns.get(key)
        if task is not None and task.done() and not task.cancelled() and task.exception() is not None \
                and key in self._prewarmed:
            self._prewarmed.discard(key)  # report the background attempt's error once
        elif task is not None and task.done() and (task.cancelled() or task.exception() is not None
                                                   or task.result().is_closed()):
            task = None
        if task is None:
            task = asyncio.ensure_future(self._connect(target))
            self._conns[key] = task
        try:
            return await asyncio.shield(task)
        except BaseException:
            if task.done() and not task.cancelled() and task.exception() is not None \
                    and self._conns.get(key) is task:
                del self._conns[key]
            raise

    @asynccontextmanager
    async def session(self, target: SshTarget, *, control: bool = False) -> AsyncIterator[
            asyncssh.SSHClientConnection]:
        """A connection plus a channel slot on it, held for the ``async with`` block."""
        key = target.pool_key()
        slots = self._control if control else self._steps
        if key not in slots:
            slots[key] = asyncio.Semaphore(1 if control else self.max_sessions - 1)
        async with slots[key]:
            yield await self.connection(target)

    def options(self, target: SshTarget) -> dict[str, Any]:
        """Keyword arguments of ``asyncssh.connect`` for ``target`` (pure; tested without a server).

        They are passed to ``connect`` itself, not pre-built into options, so ssh_config's
        ``Host`` blocks match the host name.
        """
        kwargs: dict[str, Any] = {
            "connect_timeout": target.connect_timeout or self.connect_timeout,
            "keepalive_interval": self.keepalive,
            "keepalive_count_max": 3,
            "encryption_algs": self.ciphers,
        }
        if self.ssh_config:
            kwargs["config"] = [os.path.expanduser(self.ssh_config)]
        if target.port:
            kwargs["port"] = target.port
        if target.user:
            kwargs["username"] = target.user
        if self.insecure or target.host_key_checking is False:
            kwargs["known_hosts"] = None
        elif target.known_hosts or self.known_hosts:
            kwargs["known_hosts"] = os.path.expanduser(str(target.known_hosts or self.known_hosts))
        if target.private_key is not None:
            # explicit credentials are used alone: no agent, no default keys, no password prompt
            kwargs["client_keys"] = [asyncssh.import_private_key(target.private_key)]
            kwargs["agent_path"] = None
        elif target.key_file:
            kwargs["client_keys"] = [os.path.expanduser(target.key_file)]
            kwargs["agent_path"] = None
        elif target.password is not None:
            kwargs["client_keys"] = None
            kwargs["agent_path"] = None
        if target.password is not None:
            kwargs["password"] = target.password
        return kwargs

    async def _connect(self, target: SshTarget) -> asyncssh.SSHClientConnection:
        options = self.options(target)
        if target.jump is not None:  # a bastion: the connection runs through one to the jump host
            try:
                options["tunnel"] = await self.connection(target.jump)
            except BackendError as exc:
                raise BackendError(f"ssh {target.label}: through proxy_jump {target.jump.label}: {exc}") from None
        try:
            async with self._handshakes:
                conn = await asyncssh.connect(target.address, **options)
        except (TimeoutError, Exception) as exc:
            raise translate_error(exc, target, self.secret_values) from None
        self.opened += 1
        return conn

    async def close(self) -> None:
        """Close every connection; idempotent, never raises."""
        self._closed = True
        conns, self._conns = list(self._conns.values()), {}
        for task in conns:
            if not task.done():
                task.cancel()
        await asyncio.gather(*(_close_one(task) for task in conns))


async def open_channel(conn: asyncssh.SSHClientConnection, opener: Callable[[], Awaitable[T]],
                       attempts: int = 40) -> T:
    """Run ``opener`` (which opens a channel), retrying while the server refuses new channels.

    sshd frees a session slot only after it has reaped the session's process, a little after
    the channel closed, so a burst of short steps can briefly meet ``MaxSessions``.
    """
    for attempt in range(attempts):
        try:
            return await opener()
        except asyncssh.ChannelOpenError:
            if attempt == attempts - 1 or conn.is_closed():
                raise
            await asyncio.sleep(min(0.2, 0.005 * 2 ** attempt))
    raise AssertionError("unreachable")  # pragma: no cover


async def _close_one(task: asyncio.Task[asyncssh.SSHClientConnection]) -> None:
    try:
        conn = await task
    except BaseException:  # a failed or cancelled attempt holds nothing
        return
    conn.close()
    try:
        await asyncio.wait_for(conn.wait_closed(), 5)
    except (TimeoutError, Exception):
        pass


def _retrieve(task: asyncio.Task[asyncssh.SSHClientConnection]) -> None:
    """Mark a background attempt's exception as seen (it is re-raised to whoever asks)."""
    if not task.cancelled():
        task.exception()


def translate_error(exc: BaseException, target: SshTarget,
                    secret_values: list[str] | None = None) -> BackendError:
    """A foreign error while connecting -> one line naming the host, never a credential."""
    where = f"ssh {target.label}"
    if isinstance(exc, asyncssh.PermissionDenied):
        msg = f"{where}: authentication failed (check the user, key or password)"
    elif isinstance(exc, asyncssh.HostKeyNotVerifiable):
        msg = (f"{where}: host key not trusted ({exc.reason.rstrip('.')}); if the key changed on purpose, "
               "update known_hosts (ssh-keyscan); to skip the check set host_key_checking: false in the "
               "inventory or WORLDTREE_SSH_INSECURE=1")
    elif isinstance(exc, asyncssh.KeyImportError):
        msg = f"{where}: the private key cannot be read (encrypted, or not an OpenSSH/PEM key)"
    elif isinstance(exc, socket.gaierror):
        msg = f"{where}: cannot resolve host name {target.address!r}"
    elif isinstance(exc, ConnectionRefusedError):
        msg = f"{where}: connection refused (is sshd listening on that port?)"
    elif isinstance(exc, asyncio.TimeoutError | TimeoutError | asyncssh.TimeoutError):
        msg = f"{where}: connection timed out"
    elif isinstance(exc, asyncssh.DisconnectError):
        msg = f"{where}: disconnected: {exc.reason}"
    elif isinstance(exc, OSError):
        msg = f"{where}: unreachable ({exc.strerror or exc})"
    elif isinstance(exc, asyncssh.Error):
        msg = f"{where}: {exc.reason}"
    else:
        return BackendError(_scrub(f"{where}: {type(exc).__name__}: {exc}", target, secret_values))
    return ConnectError(_scrub(msg, target, secret_values))


def _scrub(message: str, target: SshTarget, secret_values: list[str] | None) -> str:
    for secret in [*target.secrets(), *(secret_values or [])]:
        if secret and len(secret) >= 3:
            message = message.replace(secret, "***")
    return message.replace("\n", " ")
