"""Run one plugin subcommand: bounded in time and output, minimal environment, credentials masked.

Contract, as a caller relies on it:

* The child gets only :data:`~worldtree.backends.child_env.ALLOWLIST` (+ ``LC_*``) and, for
  ``plan``/``apply``, the variables its ``info`` lists as ``credentials`` (masked) and ``env``. Nothing else from
  worldtree's environment reaches it (not ``WORLDTREE_STORE``, not another provider's token).
* It runs in its own session; at ``timeout`` the whole process group gets SIGKILL and the call
  raises :class:`PluginError` ("timed out after N s"). No call waits longer than the timeout
  plus a moment for the pipes to close. A :class:`~worldtree.backends.watchdog.Watchdog` kills
  the group if worldtree dies first (``kill -9`` of ``stack apply``): the next applier takes the
  dead one's lease over, and must not find its plugin still applying beside its own.
* stderr is forwarded line by line to ``on_log`` as it arrives (masked); stdout is capped at
  :data:`MAX_STDOUT` bytes and masked before it is parsed, so a credential the plugin echoes
  never reaches a plan, a state file or the console.
* Exit 0 with a valid Response is success; a non-zero exit, invalid JSON or a wrong envelope is
  a PluginError that says which and how to fix it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from worldtree.backends.child_env import inherited
from worldtree.backends.watchdog import Watchdog
from worldtree.engine.masking import Masker
from worldtree.errors import BackendError
from worldtree.plugins.protocol import API_VERSION, PluginInfo, PluginResponse

MAX_STDOUT = 16 * 1024 * 1024
MAX_LOG_LINE = 64 * 1024
DEFAULT_TIMEOUT = 600.0
#: How long the pipes may stay open after the group is killed (a child outside it holds them).
PIPE_GRACE = 2.0


class PluginError(BackendError):
    """A plugin failed, hung, or broke the protocol (not: it reported ok=false)."""


class Plugin:
    """One plugin executable, its ``info`` read once."""

    def __init__(self, path: Path, environ: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT,
                 on_log: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.environ = dict(os.environ if environ is None else environ)
        self.timeout = timeout
        self.on_log = on_log or (lambda _line: None)
        self._info: PluginInfo | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def info(self) -> PluginInfo:
        if self._info is None:
            out = self._run("info", None, inherited(self.environ, "allowlist"), Masker())
            try:
                self._info = PluginInfo.model_validate(json.loads(out) if out.strip() else {})
            except (ValueError, ValidationError) as exc:
                raise PluginError(f"{self.name} info printed no valid info JSON ({_first_line(exc)}); "
                                  "print {\"name\", \"version\", \"credentials\": [...]}") from None
        return self._info

    def credentials(self) -> dict[str, str]:
        """The credential variables ``info`` names that are set here (values, for the child only)."""
        return {k: self.environ[k] for k in self.info().credentials if self.environ.get(k)}

    def masker(self) -> Masker:
        return Masker(list(self.credentials().values()))

    def call(self, subcommand: str, payload: dict[str, Any]) -> PluginResponse:
        """``plan`` or ``apply``: the request on stdin, a checked Response back (masked)."""
        settings = {k: self.environ[k] for k in self.info().env if k in self.environ}
        env = {**inherited(self.environ, "allowlist"), **settings, **self.credentials()}
        out = self._run(subcommand, json.dumps(payload), env, self.masker())
        try:
            data = json.loads(out)
        except ValueError as exc:
            raise PluginError(f"{self.name} {subcommand} printed invalid JSON on stdout ({exc}); "
                              "print one Response object on stdout and logs on stderr") from None
        if not isinstance(data, dict) or data.get("apiVersion") != API_VERSION or data.get("kind") != "Response":
            raise PluginError(f"{self.name} {subcommand}: stdout is not a Response; it needs "
                              f'"apiVersion": "{API_VERSION}", "kind": "Response"')
        try:
            return PluginResponse.model_validate(data)
        except ValidationError as exc:
            raise PluginError(f"{self.name} {subcommand}: malformed Response: {_first_line(exc)}") from None

    def _run(self, subcommand: str, stdin: str | None, env: dict[str, str], masker: Masker) -> str:
        try:
            proc = subprocess.Popen([str(self.path), subcommand], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env, start_new_session=True)
        except OSError as exc:
            raise PluginError(f"{self.name}: cannot start: {exc.strerror or exc}") from None
        watchdog = Watchdog()  # one per call: calls run in threads, and it is one small /bin/sh
        try:
            watchdog.track(proc.pid)
        except OSError:  # no /bin/sh to watch with: the plugin runs unguarded rather than not at all
            pass
        try:
            return self._wait(proc, subcommand, stdin, masker)
        finally:
            watchdog.forget(proc.pid)
            watchdog.close()

    def _wait(self, proc: subprocess.Popen[bytes], subcommand: str, stdin: str | None, masker: Masker) -> str:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        chunks: list[bytes] = []
        overflow = threading.Event()
        readers = [threading.Thread(target=_read_capped, args=(proc.stdout, chunks, overflow), daemon=True),
                   threading.Thread(target=self._forward, args=(proc.stderr, masker), daemon=True)]
        for reader in readers:
            reader.start()
        threading.Thread(target=_feed, args=(proc.stdin, stdin), daemon=True).start()
        try:
            code = proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise PluginError(f"{self.name} {subcommand} timed out after {self.timeout:g} s and was killed; "
                              "raise --plugin-timeout if it needs longer") from None
        finally:
            _kill_group(proc)  # leftovers of its group too: a grandchild holding the pipes must not hold us
            for reader in readers:
                reader.join(PIPE_GRACE)
        if overflow.is_set():
            raise PluginError(f"{self.name} {subcommand} printed more than {MAX_STDOUT} bytes on stdout; "
                              "send logs to stderr")
        out = masker.mask(b"".join(chunks).decode("utf-8", "replace"))
        if code != 0:
            raise PluginError(f"{self.name} {subcommand} exited with code {code}; its log above says why")
        return out

    def _forward(self, stream: IO[bytes], masker: Masker) -> None:
        for raw in iter(lambda: stream.readline(MAX_LOG_LINE), b""):  # a line without end is cut, not hoarded
            self.on_log(masker.mask(raw.decode("utf-8", "replace").rstrip("\n")))


def _feed(stream: IO[bytes], text: str | None) -> None:
    try:
        if text is not None:
            stream.write(text.encode("utf-8"))
    except OSError:
        pass  # the plugin exited without reading: its exit code tells the story
    finally:
        try:
            stream.close()
        except OSError:
            pass


def _read_capped(stream: IO[bytes], chunks: list[bytes], overflow: threading.Event) -> None:
    total = 0
    for chunk in iter(lambda: stream.read(65536), b""):
        total += len(chunk)
        if total > MAX_STDOUT:
            overflow.set()
            continue  # keep draining so the child is not blocked on a full pipe
        chunks.append(chunk)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
