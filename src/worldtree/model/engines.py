"""What an ``engine:`` value may be, and the grammar of ``ssh://`` URLs (seed 003 §4.3).

Pure and at the bottom of the layers, so the loader can reject a bad engine at load time
(``file:line:col``, exit 2) with the same parser the SSH connector uses at run time: a URL
that loads is a URL that parses. ``${NAME}`` parts are checked after expansion, at run time.

=================================  ==========================================
``host``                           this machine
``docker``                         a container (also implied by ``image:``)
``ssh://[user[:pw]@]host[:port]``  a remote host; see ``connectors.ssh.target``
``idp://`` / ``idps://``           an agent behind a worldtree server; see ``model.idp``
=================================  ==========================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from worldtree.model.refs import REF

__all__ = ["KINDS", "SSH_QUERY_KEYS", "SshUrlParts", "check_engine", "split_ssh_url"]

#: every target kind a document may name; ``backends.registry`` maps each to a backend
KINDS = ("host", "docker", "ssh", "idp")
_SCHEMES = {"ssh": "ssh", "idp": "idp", "idps": "idp"}
SSH_QUERY_KEYS = frozenset({"user", "key_file", "known_hosts", "host_key_checking", "connect_timeout"})


@dataclass(frozen=True)
class SshUrlParts:
    """The raw parts of an ``ssh://`` URL: still percent-encoded, ``${NAME}`` not yet expanded."""

    host: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    port: str | None = None
    params: dict[str, str] = field(default_factory=dict)


def split_ssh_url(url: str) -> SshUrlParts:
    """``ssh://[user[:pass]@]host[:port][?q]`` -> parts; ValueError saying what is wrong.

    The password may hold ``@`` (the last ``@`` ends the user part). An IPv6 address is
    written in brackets (``ssh://[::1]:22``); a bracket anywhere else is an error, since
    guessing where the host ends could dial the wrong machine.
    """
    if not url.startswith("ssh://"):
        raise ValueError("an SSH engine URL starts with ssh://")
    rest, _, query = url[len("ssh://"):].partition("?")
    userinfo, at, hostport = rest.rstrip("/").rpartition("@")
    user = password = None
    if at:
        user, colon, pw = userinfo.partition(":")
        password = pw if colon else None
    port: str | None
    if hostport.startswith("["):
        host, closed, tail = hostport[1:].partition("]")
        if not closed or "[" in host:
            raise ValueError("unbalanced brackets: write an IPv6 address as [addr] or [addr]:port")
        if tail and not tail.startswith(":"):
            raise ValueError(f"unexpected {tail!r} after the bracketed address; only :port may follow")
        port = tail[1:] if tail else None
    else:
        if "[" in hostport or "]" in hostport:
            raise ValueError("unbalanced brackets: write an IPv6 address as [addr] or [addr]:port")
        host, colon, port_text = hostport.rpartition(":")
        if not colon:
            host, port = hostport, None
        else:
            port = port_text
        if "/" in host:
            raise ValueError("a path after the host is not allowed; the URL ends after host[:port]")
    if not host:
        raise ValueError("no host name: write ssh://[user@]host[:port]")
    if port is not None and not REF.fullmatch(port) and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError("port must be a number from 1 to 65535")
    params = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(params) - SSH_QUERY_KEYS)
    if unknown:
        raise ValueError(f"unknown query parameter {unknown[0]!r} (known: {', '.join(sorted(SSH_QUERY_KEYS))})")
    return SshUrlParts(host=host, user=user, password=password, port=port, params=params)


def check_engine(text: str) -> str | None:
    """None when ``text`` names a known engine in a well-formed way; else what is wrong and
    what to write instead (the loader adds the position)."""
    if "://" not in text:
        if text in ("host", "docker"):
            return None
        return f"unknown engine {text!r}; use host, docker (or an `image`), or ssh://[user@]host[:port]"
    scheme = text.split("://", 1)[0]
    if scheme not in _SCHEMES:
        return (f"unknown engine scheme {scheme + '://'!r}; use ssh://[user@]host[:port], "
                "host or docker")
    if scheme != "ssh":
        from worldtree.model.idp import check_idp_url

        return check_idp_url(text)
    try:
        split_ssh_url(text)
    except ValueError as exc:
        return f"engine URL: {exc}"
    return None
