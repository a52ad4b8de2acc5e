"""``engine: idp://client_id:client_secret@host:port`` (seed 003 §4.4): run a step on an agent
through the worldtree server at ``host:port``.

Seed 003's tool connects to a remote "IDP agent" over WebSocket; worldtree routes such a step
through a worldtree server instead: the server at ``host:port`` queues the step's job and one of
its agents (matched by the job's label selector) runs it. ``client_id:client_secret`` is the
credential the server checks (the secret is the API token; the id names the caller in its audit
log). ``idps://`` asks for TLS.

The compiled node carries the server address (``Target.server``, ``Target.tls``); the URL itself
stays in ``Target.engine`` so that ``${NAME}`` parts can be expanded from the run's secrets at run
time. A secret written literally is masked wherever the graph is shown or stored (as an
``ssh://`` password is; see ``app.secrets.literal_credentials``), and the loader warns to write
``${NAME}`` with NAME in the job's ``secrets:`` instead.

Pure parsing, no I/O; the loader calls :func:`check_idp_url` so a URL that loads is one that parses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote

from worldtree.model.refs import REF

__all__ = ["DEFAULT_PORT", "IdpUrl", "check_idp_url", "literal_idp_credentials", "split_idp_url"]

#: the port ``worldtree server`` serves its REST API on by default (``--port``): idp:// names the HTTP port
DEFAULT_PORT = 8080


@dataclass(frozen=True)
class IdpUrl:
    """The parts of an ``idp://`` URL, still percent-encoded and with ``${NAME}`` unexpanded."""

    host: str
    port: int | str
    tls: bool
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)

    @property
    def server(self) -> str:
        """``host:port`` of the worldtree server (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def split_idp_url(url: str) -> IdpUrl:
    """``idp[s]://[client_id[:client_secret]@]host[:port]`` -> parts; ValueError saying what is wrong."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("idp", "idps"):
        raise ValueError("an IDP engine URL starts with idp:// or idps://")
    if "?" in rest or "#" in rest:
        raise ValueError("an idp:// URL takes no query or fragment; it ends after host[:port]")
    userinfo, at, hostport = rest.rstrip("/").rpartition("@")
    client_id = secret = None
    if at:
        client_id, colon, pw = userinfo.partition(":")
        secret = pw if colon else None
    port_text: str | None
    if hostport.startswith("["):
        host, closed, tail = hostport[1:].partition("]")
        if not closed or (tail and not tail.startswith(":")):
            raise ValueError("write an IPv6 address as [addr] or [addr]:port")
        port_text = tail[1:] if tail else None
    else:
        host, colon, port_text = hostport.rpartition(":")
        if not colon:
            host, port_text = hostport, None
    if not host or "/" in host:
        raise ValueError("write idp://client_id:client_secret@host:port (the worldtree server's HTTP address)")
    port: int | str = DEFAULT_PORT
    if port_text is not None:
        if REF.fullmatch(port_text):
            port = port_text
        elif port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536:  # not "٣" (int() reads 3)
            port = int(port_text)
        else:
            raise ValueError("port must be a number from 1 to 65535")
    return IdpUrl(host=host, port=port, tls=scheme == "idps", client_id=client_id or None, client_secret=secret)


def check_idp_url(url: str) -> str | None:
    """None when ``url`` parses; else what is wrong and what to write (the loader adds the position)."""
    try:
        split_idp_url(url)
    except ValueError as exc:
        return f"engine URL: {exc}"
    return None


def literal_idp_credentials(url: str) -> list[str]:
    """The client secret written literally in ``url`` (not ``${NAME}``), as written and decoded."""
    try:
        parts = split_idp_url(url)
    except ValueError:
        return []
    secret = parts.client_secret
    if not secret or REF.search(secret):
        return []
    return list(dict.fromkeys([secret, unquote(secret)]))
