"""Fetch skills from a source: a local directory, a git repository (uri + ref + path), or HTTP.

A skill is ``<name>/SKILL.md``: its name is its folder's, its identity the sha256 of its text.
Skills are text for people and assistants; nothing here runs them. Limits: HTTP gets 15 s and
2 MiB per document (a larger one is refused, not cut); git gets 60 s per command and the same
2 MiB per file. Errors name the source and what to do, never a credential in a URL.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from worldtree.errors import UsageError

SKILL_FILE = "SKILL.md"
HTTP_TIMEOUT = 15.0
MAX_BYTES = 2 * 1024 * 1024
GIT_TIMEOUT = 60.0
KINDS = ("local", "git", "http")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_USERINFO = re.compile(r"(//[^/@:]*):[^/@]*@")


@dataclass(frozen=True)
class Fetched:
    """One skill as a source gave it."""

    name: str
    content: str
    origin: str
    version: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content.encode("utf-8")).hexdigest()


def shown(uri: str) -> str:
    """``uri`` without a password, for messages and the recorded origin (also when it does not
    parse: ``http://u:pw@[::1/x`` made urlsplit raise, the message about it never came)."""
    try:
        parts = urlsplit(uri)
        if parts.password is None:
            return uri
        host = parts.hostname or ""
        netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return _USERINFO.sub(r"\1:***@", uri)


def local(directory: Path) -> list[Fetched]:
    """Every ``<name>/SKILL.md`` directly under ``directory`` (none when it does not exist).

    A SKILL.md that is not a regular file inside ``directory`` is skipped: a repository's
    ``skills/x/SKILL.md`` linking to ``~/.aws/credentials`` would hand that file to every assistant
    reading the skill (MCP resources), one linking to ``/dev/zero`` or a FIFO would never end."""
    if not directory.is_dir():
        return []
    root = directory.resolve()
    found = []
    for path in sorted(directory.glob(f"*/{SKILL_FILE}")):
        if not _NAME.match(path.parent.name):
            continue
        try:
            real = path.resolve(strict=True)
            if not real.is_relative_to(root) or not real.is_file() or real.stat().st_size > MAX_BYTES:
                continue
            with real.open("rb") as fh:
                raw = fh.read(MAX_BYTES + 1)  # the size may change between stat and read
        except (OSError, RuntimeError):  # gone, unreadable, a link loop
            continue
        if len(raw) > MAX_BYTES:
            continue
        text = raw.decode("utf-8", errors="replace")
        found.append(Fetched(path.parent.name, text, str(path), hashlib.sha256(text.encode()).hexdigest()[:12]))
    return found


def git(uri: str, ref: str | None, path: str | None) -> list[Fetched]:
    """The skills under ``path`` at ``ref`` (default HEAD) of the repository ``uri``, via the git CLI."""
    ref = ref or "HEAD"
    if ref.startswith("-") or uri.startswith("-"):
        raise UsageError(f"git source {shown(uri)}: uri and ref must not start with '-'")
    prefix = (path or "").strip("/")
    with tempfile.TemporaryDirectory(prefix="worldtree-skills-") as tmp:
        _git(["clone", "--quiet", "--bare", "--", uri, tmp], uri)
        commit = _git(["-C", tmp, "rev-parse", "--verify", "--end-of-options", f"{ref}^{{commit}}"], uri).strip()
        # -l: each blob's size, so a large one is refused before it is read; -z: names as they are
        listing = _git(["-C", tmp, "ls-tree", "-r", "-l", "-z", commit, "--", prefix or "."], uri)
        found = []
        entries = sorted((e.partition("\t")[2], e.partition("\t")[0]) for e in listing.split("\0") if e)
        for name, meta in entries:
            mode, kind, _sha, size = [*meta.split(), "", "", "", ""][:4]
            rel = name[len(prefix) + 1:] if prefix else name
            parts = rel.split("/")
            if len(parts) != 2 or parts[1] != SKILL_FILE or not _NAME.match(parts[0]):
                continue
            if kind != "blob" or mode == "120000":  # a symbolic link's text is its target, not a skill
                continue
            if not size.isdigit() or int(size) > MAX_BYTES:
                raise UsageError(f"git source {shown(uri)}: {name} is larger than {MAX_BYTES} bytes")
            text = _git(["-C", tmp, "cat-file", "blob", f"{commit}:{name}"], uri)
            found.append(Fetched(parts[0], text, f"{shown(uri)}@{commit[:12]}:{name}", commit))
    return found


def _git(args: list[str], uri: str) -> str:
    try:
        # ext:: would run a command named in the uri: never, whatever the user's git config says
        proc = subprocess.run(["git", "-c", "protocol.ext.allow=never", *args], capture_output=True, text=True,
                              encoding="utf-8", errors="replace", timeout=GIT_TIMEOUT,
                              env={"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin:/usr/local/bin"})
    except FileNotFoundError:
        raise UsageError("git sources need the git command; install git") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"git source {shown(uri)}: git {args[0]} took more than {GIT_TIMEOUT:.0f} s") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["failed"])[-1].replace(uri, shown(uri))
        raise UsageError(f"git source {shown(uri)}: {last}; check the uri, ref and path")
    return proc.stdout


def http(uri: str, name: str | None) -> list[Fetched]:
    """One SKILL.md at ``uri``; its name is ``name``, else the URL's folder (``…/<name>/SKILL.md``)."""
    import httpx

    try:
        skill = name or (urlsplit(uri).path.rstrip("/").split("/")[-2:] or [""])[0]
    except ValueError:
        raise UsageError(f"http source {shown(uri)}: not a URL; check it") from None
    if not _NAME.match(skill or ""):
        raise UsageError(f"http source {shown(uri)}: cannot tell the skill's name; give --path NAME")
    body = bytearray()
    deadline = time.monotonic() + HTTP_TIMEOUT  # for the whole body: a server dripping bytes is cut off too
    try:
        with httpx.stream("GET", uri, timeout=HTTP_TIMEOUT, follow_redirects=True) as response:
            if response.status_code != 200:
                raise UsageError(f"http source {shown(uri)}: {response.status_code} {response.reason_phrase}")
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_BYTES:
                    raise UsageError(f"http source {shown(uri)}: larger than {MAX_BYTES} bytes; refused")
                if time.monotonic() > deadline:
                    raise UsageError(f"http source {shown(uri)}: took more than {HTTP_TIMEOUT:.0f} s; refused")
            version = response.headers.get("etag", "").strip('"')
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL is no HTTPError (a bad port)
        raise UsageError(f"http source {shown(uri)}: {type(exc).__name__}; check the URL") from None
    text = body.decode("utf-8", errors="replace")
    return [Fetched(skill, text, shown(uri), version or hashlib.sha256(body).hexdigest()[:12])]
