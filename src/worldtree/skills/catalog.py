"""The skills a stack sees: the repo's ``./skills`` first, then external sources by priority; later wins.

External sources (``worldtree skills add-source``) are fetched only by ``sync``, which caches what
each gave in the run store (PostgreSQL in agent mode, so every agent sees one cache); ``list``,
``show`` and plans read the cache and never touch the network. Each skill keeps where it came
from (``origin``), its ``version`` (a git commit, an ETag, or a content hash) and its ``sha256``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from worldtree.errors import UsageError, WorldtreeError
from worldtree.skills import sources
from worldtree.store.stacks import StackRows

REPO = "repo"
_SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class Skill:
    name: str
    sha256: str
    origin: str
    version: str
    source: str
    content: str

    def summary(self) -> dict[str, Any]:
        """Everything but the text."""
        return {k: v for k, v in asdict(self).items() if k != "content"}


def add_source(rows: StackRows, name: str, kind: str, uri: str, ref: str | None, path: str | None,
               priority: int) -> None:
    if not _SOURCE_NAME.match(name) or name == REPO:
        raise UsageError(f"source name {name!r}: use letters, digits, '.', '_' or '-' (and not {REPO!r})")
    if kind not in sources.KINDS:
        raise UsageError(f"--kind {kind!r}: one of {', '.join(sources.KINDS)}")
    if kind == "http" and not uri.startswith(("http://", "https://")):
        raise UsageError(f"--uri {sources.shown(uri)!r}: an http source needs an http(s):// URL")
    rows.add_source(name, kind, uri, ref, path, priority)


def fetch(source: dict[str, Any]) -> list[sources.Fetched]:
    kind, uri = source["kind"], source["uri"]
    if kind == "local":
        base = Path(uri) / (source.get("path") or "")
        return sources.local(base)
    if kind == "git":
        return sources.git(uri, source.get("ref"), source.get("path"))
    return sources.http(uri, source.get("path"))


def sync_sources(rows: StackRows) -> list[dict[str, Any]]:
    """Fetch every external source and replace its cached skills; one ``{source, skills | error}`` each.

    A source that fails keeps its previous cache (an unreachable host does not empty it).
    """
    report = []
    for source in rows.sources():
        try:
            fetched = fetch(source)
        except WorldtreeError as exc:
            report.append({"source": source["name"], "error": str(exc)})
            continue
        rows.cache_skills(source["name"], [{"name": f.name, "sha256": f.sha256, "content": f.content,
                                             "origin": f.origin, "version": f.version} for f in fetched])
        report.append({"source": source["name"], "skills": [f.name for f in fetched]})
    return report


def load_skills(repo_root: Path, rows: StackRows | None) -> list[Skill]:
    """The effective skills, by name: ``repo_root/skills`` first, then cached sources by priority."""
    chosen: dict[str, Skill] = {}
    for f in sources.local(repo_root / "skills"):
        chosen[f.name] = Skill(f.name, f.sha256, f.origin, f.version, REPO, f.content)
    if rows is not None:
        order = {s["name"]: i for i, s in enumerate(rows.sources())}
        cached = [c for c in rows.cached_skills() if c["source"] in order]
        for c in sorted(cached, key=lambda c: (order[c["source"]], c["name"])):
            chosen[c["name"]] = Skill(c["name"], c["sha256"], c["origin"], c["version"], c["source"], c["content"])
    return [chosen[name] for name in sorted(chosen)]
