"""``become``: operations act as another user (root by default) through ``sudo``.

:class:`BecomeConnection` wraps the login connection (local or SSH). Commands run as
``sudo -k -S -p '' -H -u USER -- sh -c 'exec </dev/null; LINE'``:

* the password (from a secret, never the inventory) goes to sudo on stdin, never on a
  command line; ``-k`` makes sudo read it every time, and the command's ``exec </dev/null``
  means that where sudo does not ask (NOPASSWD, a cached timestamp) the unread password is
  never seen by the command;
* without a password ``sudo -n`` fails at once instead of waiting for a prompt.

File primitives become short commands under sudo (``stat``, ``mkdir``, ``chmod``, ``chown``,
``ln``/``mv``, ``rm``). Bytes never travel through sudo's stdin (that is the password's):
``write`` puts them, as the login user, in a scratch directory under ``/tmp`` (mode 0733: not
listable; random names), then ``cp`` + ``chmod`` + ``mv -f`` under sudo replace the target
atomically; ``read`` copies the file under sudo into that directory and reads it there as the
login user. The copy is removed right after, the directory when the connection closes.
"""

from __future__ import annotations

import posixpath
import secrets as random
import shlex

from worldtree.compile.diagnostics import Diagnostic
from worldtree.errors import SpecError
from worldtree.ops.command import Quoted, ShellCommand, sh
from worldtree.ops.connection import ABSENT, CommandResult, Connection, PathState, state_from_mode
from worldtree.ops.inventory import HostSpec
from worldtree.ops.operation import OpError
from worldtree.ops.secrets import Secrets

__all__ = ["BecomeConnection", "become_settings"]


class BecomeConnection(Connection):
    """``inner``'s host, acting as ``user`` through ``exe`` (``sudo``)."""

    def __init__(self, inner: Connection, user: str = "root", password: str | None = None,
                 exe: str = "sudo") -> None:
        self.inner = inner
        self.name = inner.name
        self.user = user
        self.password = password
        self.exe = exe
        self._scratch: str | None = None

    def _wrap(self, command: ShellCommand) -> tuple[ShellCommand, bytes | None]:
        inner = "exec </dev/null; " + command.render()
        head = [Quoted(self.exe), "-k -S -p ''" if self.password is not None else "-n", "-H -u", Quoted(self.user),
                "-- sh -c"]
        secrets = tuple(command.secrets) + ((self.password,) if self.password else ())
        wrapped = ShellCommand((*head, Quoted(inner)), secrets)
        return wrapped, (self.password + "\n").encode() if self.password is not None else None

    async def run(self, command: ShellCommand, *, timeout: float | None = None,
                  stdin: bytes | None = None) -> CommandResult:
        if stdin is not None:
            raise OpError("become: a command's stdin is the sudo password's; pass data through a file")
        wrapped, feed = self._wrap(command)
        result = await self.inner.run(wrapped, timeout=timeout, stdin=feed)
        if result.exit_status == 127 and "sudo" in result.stderr and "not found" in result.stderr:
            raise OpError(f"become: {self.exe} not found on {self.name}; install sudo or remove `become`")
        if result.exit_status == 1 and not result.stdout and _refused(result.stderr):
            why = "the password was refused" if self.password is not None else \
                "a password is required (set become_password)"
            raise OpError(f"become: sudo -u {self.user} on {self.name}: {why}")
        if self.password:
            return CommandResult(result.exit_status, result.stdout.replace(self.password, "***"),
                                 result.stderr.replace(self.password, "***"))
        return result

    async def _must(self, command: ShellCommand, what: str) -> str:
        result = await self.run(command)
        if result.exit_status != 0:
            raise OSError(f"{what} as {self.user} on {self.name}: {result.stderr.strip()[-200:] or 'failed'}")
        return result.stdout

    async def _scratch_dir(self) -> str:
        """A directory of the login user for bytes on their way in or out: 0733, so a become user
        other than root may put a copy there, and nobody else may list the random names in it."""
        if self._scratch is None:
            path = f"/tmp/.wt-become-{random.token_hex(8)}"
            await self.inner.mkdir(path, 0o733)
            self._scratch = path
        return self._scratch

    async def stat(self, path: str) -> PathState:
        p = shlex.quote(path)
        out = await self._must(sh(f"if [ -e {p} ] || [ -L {p} ]; then stat -c '%f %s %u %g' -- {p}; "
                                  f"[ -L {p} ] && readlink -- {p}; else echo absent; fi; true"), f"stat {path}")
        lines = out.splitlines()
        if not lines or lines[0] == "absent":
            return ABSENT
        mode_hex, size, uid, gid = lines[0].split()
        return state_from_mode(int(mode_hex, 16), int(size), lines[1] if len(lines) > 1 else None,
                               int(uid), int(gid))

    async def read(self, path: str) -> bytes:
        tmp = posixpath.join(await self._scratch_dir(), random.token_hex(8))
        await self._must(sh("cp --", Quoted(path), Quoted(tmp), "&& chmod 644 --", Quoted(tmp)), f"read {path}")
        try:
            return await self.inner.read(tmp)
        finally:
            await self.inner.remove(tmp)  # the scratch directory is the login user's: it may remove any file in it

    async def write(self, path: str, data: bytes, mode: int) -> None:
        tmp = posixpath.join(await self._scratch_dir(), random.token_hex(8))
        await self.inner.write(tmp, data, 0o644)
        staged = posixpath.join(posixpath.dirname(path), f".{posixpath.basename(path)}.wt-{random.token_hex(4)}")
        try:
            await self._must(sh("cp --", Quoted(tmp), Quoted(staged), f"&& chmod {mode:o} --", Quoted(staged),
                                "&& mv -f --", Quoted(staged), Quoted(path), "|| { rm -f --", Quoted(staged),
                                "; exit 1; }"), f"write {path}")
        finally:
            await self.inner.remove(tmp)

    async def mkdir(self, path: str, mode: int) -> None:
        await self._must(sh("mkdir --", Quoted(path), f"&& chmod {mode:o} --", Quoted(path)), f"mkdir {path}")

    async def chmod(self, path: str, mode: int) -> None:
        await self._must(sh(f"chmod {mode:o} --", Quoted(path)), f"chmod {path}")

    async def chown(self, path: str, uid: int, gid: int) -> None:
        owner = f"{'' if uid < 0 else uid}:{'' if gid < 0 else gid}"
        await self._must(sh("chown -h", Quoted(owner), "--", Quoted(path)), f"chown {path}")

    async def symlink(self, target: str, path: str) -> None:
        staged = posixpath.join(posixpath.dirname(path), f".{posixpath.basename(path)}.wt-{random.token_hex(4)}")
        await self._must(sh("ln -s --", Quoted(target), Quoted(staged), "&& mv -Tf --", Quoted(staged), Quoted(path)),
                         f"symlink {path}")

    async def remove(self, path: str) -> None:
        p = shlex.quote(path)
        await self._must(sh(f"if [ -d {p} ] && [ ! -L {p} ]; then rmdir -- {p}; else rm -f -- {p}; fi"),
                         f"remove {path}")

    async def close(self) -> None:
        if self._scratch is not None:
            try:
                await self.inner.run(sh("rm -rf --", Quoted(self._scratch)))
            except Exception:  # best effort: a closed connection keeps /tmp's cleaner to it
                pass
            self._scratch = None
        await self.inner.close()


def _refused(stderr: str) -> bool:
    text = stderr.lower()
    return any(s in text for s in ("sorry, try again", "incorrect password", "a password is required",
                                   "no password was provided", "is not in the sudoers"))


def become_settings(spec: HostSpec, secrets: Secrets, host: str, source: str) -> tuple[str, str | None, str]:
    """(user, password, program) of an inventory host's ``become_*`` settings; the password's
    ``${NAME}`` is read through ``secrets`` (so every later message masks it). SpecError when the
    name is not set."""
    password = None
    if spec.become_password is not None:
        value, missing = secrets.expand(spec.become_password)
        if missing:
            raise SpecError([Diagnostic("error", "become", f"host {host!r}: become_password uses ${{{missing}}}, "
                                        "which is not set: put it in --secrets-file or the environment", source)])
        password = str(value)
    return spec.become_user or "root", password, spec.become_exe or "sudo"
