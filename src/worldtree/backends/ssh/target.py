"""Where an SSH node connects: parsed from a step's ``engine`` URL or an inventory host.

Pure conversion, no I/O. URL forms (seed 003 §4.3 plus OpenSSH habits)::

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
import re
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlencode

from worldtree.errors import BackendError

__all__ = ["KEY_USER", "SshTarget", "expand_refs", "host_engine_url", "literal_credentials", "parse_engine_url",
           "redact_engine_url", "target_for_host"]

#: the literal user name that marks a base64 private key in the password position (seed 003)
KEY_USER = "private_key"
_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_QUERY_KEYS = {"user", "key_file", "known_hosts", "host_key_checking", "connect_timeout"}
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

    def pool_key(self) -> tuple[object, ...]:
        """Equal for targets that may share one connection (a hash stands in for secrets)."""
        material = (self.password or "").encode() + b"\0" + (self.private_key or b"")
        secret = hashlib.sha256(material).hexdigest()
        return (self.address, self.port, self.user, self.key_file, secret, self.host_key_checking,
                self.known_hosts)

    def secrets(self) -> list[str]:
        """Strings that must never appear in a message about this target."""
        out = [self.password] if self.password else []
        if self.private_key:
            out.append(self.private_key.decode("utf-8", "replace"))
        return out


def expand_refs(text: str, env: Mapping[str, str], what: str) -> str:
    """Replace ``${NAME}`` from ``env``; BackendError naming the variable (never a value)."""
    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise BackendError(f"{what} uses ${{{name}}}, which is not set: list the secret in the job's "
                               "`secrets:` or set it in `environment`")
        return env[name]
    return _REF.sub(repl, text)


def _split(url: str) -> tuple[str | None, str | None, str, str | None, dict[str, str]]:
    """``ssh://[user[:pass]@]host[:port][?q]`` -> raw parts (not yet unquoted or expanded)."""
    if not url.startswith("ssh://"):
        raise BackendError("an SSH engine URL starts with ssh://")
    rest = url[len("ssh://"):]
    rest, _, query = rest.partition("?")
    rest = rest.rstrip("/")
    userinfo, at, hostport = rest.rpartition("@")
    user = password = None
    if at:
        user, colon, pw = userinfo.partition(":")
        password = pw if colon else None
    if hostport.startswith("["):  # [ipv6]:port
        host, _, tail = hostport[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else None
    else:
        host, colon, port_text = hostport.rpartition(":")
        if not colon:
            host, port = hostport, None
        else:
            port = port_text
    params = dict(parse_qsl(query, keep_blank_values=True))
    return user, password, host, port, params


def parse_engine_url(url: str, env: Mapping[str, str] | None = None) -> SshTarget:
    """Parse (and expand ``${NAME}`` in) an ``ssh://`` engine URL; see the module docstring."""
    env = env or {}
    user, password, host, port_text, params = _split(url)
    shown = redact_engine_url(url)
    unknown = sorted(set(params) - _QUERY_KEYS)
    if unknown:
        raise BackendError(f"engine {shown}: unknown query parameter {unknown[0]!r} "
                           f"(known: {', '.join(sorted(_QUERY_KEYS))})")

    def part(value: str | None) -> str | None:
        return None if value is None else unquote(expand_refs(value, env, f"engine {shown}"))

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
        if colon and not _REF.fullmatch(pw):
            userinfo = f"{user}:***"
        rest = f"{userinfo}@{hostport}"
    return f"ssh://{rest}{qmark}{query}"


def literal_credentials(url: str) -> list[str]:
    """Passwords or keys written literally in an engine URL (not ``${NAME}``), as they appear
    in the file and decoded: values a run must mask like secrets."""
    if not url.startswith("ssh://"):
        return []
    user, password, _host, _port, _params = _split(url)
    if not password or _REF.search(password):
        return []
    out = [password, unquote(password)]
    if unquote(user or "") == KEY_USER:
        with suppress(BackendError):
            out.append(_decode_key(password, "").decode("utf-8", "replace"))
    return list(dict.fromkeys(out))


def target_for_host(name: str, spec: object, env: Mapping[str, str] | None = None) -> SshTarget:
    """An inventory host (a :class:`worldtree.inventory.HostSpec` with defaults applied)."""
    from worldtree.inventory import HostSpec

    assert isinstance(spec, HostSpec)
    password = expand_refs(spec.password, env or {}, f"inventory host {name!r}") if spec.password else None
    return SshTarget(address=spec.address or name, port=spec.port, user=spec.user, password=password,
                     key_file=spec.key_file, label=name, host_key_checking=spec.host_key_checking,
                     known_hosts=spec.known_hosts, connect_timeout=spec.connect_timeout)


def host_engine_url(name: str, spec: object) -> str:
    """The ``ssh://`` URL of an inventory host (no secret: a password stays a ``${NAME}``)."""
    from worldtree.inventory import HostSpec

    assert isinstance(spec, HostSpec)
    address = spec.address or name
    host = f"[{address}]" if ":" in address else quote(address, safe="")
    userinfo = quote(spec.user, safe="") if spec.user else ""
    if spec.password:
        userinfo += ":" + spec.password  # a ${NAME} reference, checked by the inventory model
    params = {k: v for k, v in (("key_file", spec.key_file), ("known_hosts", spec.known_hosts),
                                ("connect_timeout", spec.connect_timeout)) if v is not None}
    if spec.host_key_checking is False:
        params["host_key_checking"] = "false"
    query = ("?" + urlencode(params, safe="/~${}")) if params else ""
    port = f":{spec.port}" if spec.port else ""
    return f"ssh://{userinfo + '@' if userinfo else ''}{host}{port}{query}"
