"""Where an SSH node connects: parsed from a step's ``engine`` URL or an inventory host.

Pure conversion, no I/O. The grammar itself is :func:`worldtree.model.engines.split_ssh_url`
(the loader checks it at load time); this module expands ``${NAME}`` parts and decodes keys.
An inventory host becomes a target in :mod:`worldtree.ops.inventory`. URL forms (seed 003 §4.3 plus OpenSSH habits)::

    ssh://user:password@host:port          password login
    ssh://private_key:BASE64@host:port     base64 of a private key file (OpenSSH or PEM);
        ?user=NAME                         login user, else ~/.ssh/config's User, else the local user
    ssh://user@host  |  ssh://host         ~/.ssh/config, the agent and default keys, as `ssh` does

Query parameters carry what an inventory host adds (fan-out writes them, so a fanned-out
graph runs without the inventory file: on retry, on an agent): ``key_file``,
``known_hosts``, ``host_key_checking=false``, ``connect_timeout`` (seconds).

Any part may be ``${NAME}``, expanded from the step's environment (where secrets arrive), so a
password or key need not be written in the file. Expansion happens after the URL is split, so
a password may hold ``@``, ``:`` or ``/``. A :class:`SshTarget` never shows its credentials:
its ``label`` (used in every message) is ``user@host:port`` or the inventory name.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from urllib.parse import unquote

from worldtree.errors import BackendError
from worldtree.model.engines import split_ssh_url
from worldtree.model.refs import REF, expand_required

__all__ = ["KEY_USER", "SshTarget", "literal_credentials", "parse_engine_url", "redact_engine_url"]

#: the literal user name that marks a base64 private key in the password position (seed 003)
KEY_USER = "private_key"
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class SshTarget:
    """One SSH endpoint with the credentials to log in; ``repr`` hides the credentials."""

    address: str
    port: int | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    private_key: bytes | None = field(default=None, repr=False)
    key_file: str | None = None
    label: str = ""
    host_key_checking: bool | None = None
    known_hosts: str | None = None
    connect_timeout: float | None = None
    #: a bastion: this target is reached through an SSH connection to ``jump`` (OpenSSH's ProxyJump)
    jump: SshTarget | None = None

    def pool_key(self) -> tuple[object, ...]:
        """Equal for targets that may share one connection (a hash stands in for secrets)."""
        material = (self.password or "").encode() + b"\0" + (self.private_key or b"")
        secret = hashlib.sha256(material).hexdigest()
        return (self.address, self.port, self.user, self.key_file, secret, self.host_key_checking,
                self.known_hosts, self.jump.pool_key() if self.jump else None)

    def secrets(self) -> list[str]:
        """Strings that must never appear in a message about this target."""
        out = [self.password] if self.password else []
        if self.private_key:
            out.append(self.private_key.decode("utf-8", "replace"))
        return out + (self.jump.secrets() if self.jump else [])


def parse_engine_url(url: str, env: Mapping[str, str] | None = None) -> SshTarget:
    """Parse (and expand ``${NAME}`` in) an ``ssh://`` engine URL; see the module docstring."""
    env = env or {}
    shown = redact_engine_url(url)
    try:
        parts = split_ssh_url(url)
    except ValueError as exc:
        raise BackendError(f"engine {shown}: {exc}") from None
    user, password, host, port_text, params = parts.user, parts.password, parts.host, parts.port, parts.params

    def part(value: str | None) -> str | None:
        return None if value is None else unquote(expand_required(value, env, f"engine {shown}"))

    user, password, host = part(user), part(password), part(host) or ""
    if not host:
        raise BackendError(f"engine {shown}: no host name")
    port: int | None = None
    if port_text:
        expanded = part(port_text) or ""
        if not expanded.isdigit() or not 0 < int(expanded) < 65536:
            raise BackendError(f"engine {shown}: port must be a number from 1 to 65535")
        port = int(expanded)
    key: bytes | None = None
    if user == KEY_USER:
        if not password:
            raise BackendError(f"engine {shown}: `private_key:` needs the base64 key after the colon")
        key = _decode_key(password, shown)
        password = None
        user = part(params.get("user")) or None
    elif "user" in params:
        raise BackendError(f"engine {shown}: `?user=` is only for the `private_key:` form; "
                           "put the user before the @")
    label = f"{user + '@' if user else ''}{host}{':' + str(port) if port else ''}"
    timeout_text = part(params.get("connect_timeout"))
    try:
        timeout = float(timeout_text) if timeout_text else None
    except ValueError:
        raise BackendError(f"engine {shown}: connect_timeout must be a number of seconds") from None
    checking = params.get("host_key_checking")
    return SshTarget(address=host, port=port, user=user or None, password=password, private_key=key,
                     key_file=part(params.get("key_file")), label=label,
                     host_key_checking=None if checking is None else checking.lower() not in _FALSE,
                     known_hosts=part(params.get("known_hosts")), connect_timeout=timeout)


def _decode_key(text: str, shown: str) -> bytes:
    compact = "".join(text.split())
    try:
        data = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=False)
    except (binascii.Error, ValueError):
        data = b""
    if b"PRIVATE KEY" not in data:
        try:  # URL-safe alphabet, as some tools write it
            data = base64.urlsafe_b64decode(compact + "=" * (-len(compact) % 4))
        except (binascii.Error, ValueError):
            data = b""
    if b"PRIVATE KEY" not in data:
        raise BackendError(f"engine {shown}: the private key is not base64 of a private key file "
                           "(`base64 -w0 ~/.ssh/id_ed25519`)")
    return data


def redact_engine_url(url: str) -> str:
    """The URL with any password or key replaced by ``***`` (``${NAME}`` references are kept)."""
    if not url.startswith("ssh://"):
        return url
    rest = url[len("ssh://"):]
    rest, qmark, query = rest.partition("?")
    userinfo, at, hostport = rest.rpartition("@")
    if at:
        user, colon, pw = userinfo.partition(":")
        if colon and not REF.fullmatch(pw):
            userinfo = f"{user}:***"
        rest = f"{userinfo}@{hostport}"
    return f"ssh://{rest}{qmark}{query}"


def literal_credentials(url: str) -> list[str]:
    """Passwords or keys written literally in an engine URL (not ``${NAME}``), as they appear
    in the file and decoded: values a run must mask like secrets."""
    if not url.startswith("ssh://"):
        return []
    try:
        parts = split_ssh_url(url)
    except ValueError:
        return []
    user, password = parts.user, parts.password
    if not password or REF.search(password):
        return []
    out = [password, unquote(password)]
    if unquote(user or "") == KEY_USER:
        with suppress(BackendError):
            out.append(_decode_key(password, "").decode("utf-8", "replace"))
    return list(dict.fromkeys(out))
