"""Job artifacts: collected from the workspace when a job ends, stored by content, listed, restored.

A job's ``artifacts: {paths, expire_in, when}`` (:mod:`worldtree.model.artifacts`) is collected
when the job's last node ends, in local ``worldtree run`` as on the server: every matching file is
copied to ``<root>/<sha256[:2]>/<sha256>`` (so identical files are stored once) and recorded in
the store with its path relative to the workspace. ``<root>`` is the server's ``<data dir>/artifacts``,
else ``artifacts/`` beside a SQLite store's file (``.worldtree/artifacts``), else
``./.worldtree/artifacts``. Expired ones are purged (:func:`purge`); a blob goes when no record
points at it any more.

A path that leaves the workspace — absolute, ``..``, or a symlink leading out — is refused: the
loader refuses the first two, :func:`collect` the third, and then collects nothing for the job.

Interfaces (REST, gRPC for agents) call these functions; they hold no HTTP. Functions take the run
store first: ``collect(store, run_id, attempt, job, workspace, rule)``, ``list_artifacts(store,
run_id, job=None)``, ``open_artifact(store, id)``, ``restore(store, run_id, jobs, workspace)``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import posixpath
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from worldtree.engine.events import EngineListener
from worldtree.errors import UsageError
from worldtree.model.artifacts import DEFAULT_EXPIRE_SECONDS, ArtifactRule, check_glob
from worldtree.model.graph import ExecutionGraph
from worldtree.model.records import LogLine, NodeEvent
from worldtree.model.states import TERMINAL, UNSUCCESSFUL, NodeState
from worldtree.store.api import RunStore

log = logging.getLogger("worldtree.artifacts")

#: At most this many files per job (a glob like ``**`` over node_modules must not flood the store).
MAX_FILES = 10_000
#: A blob nobody references is swept only when older than this (a collection may be writing its rows).
ORPHAN_GRACE_SECONDS = 3600.0
_root_override: list[Path] = []


class ArtifactError(UsageError):
    """A path that would leave the workspace, or too many files."""


@dataclass(frozen=True)
class Artifact:
    id: str
    run_id: str
    attempt: int
    job: str
    path: str
    sha256: str
    size: int
    created_at: datetime
    expires_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "run_id": self.run_id, "attempt": self.attempt, "job": self.job, "path": self.path,
                "sha256": self.sha256, "size": self.size, "created_at": self.created_at.isoformat(),
                "expires_at": self.expires_at.isoformat() if self.expires_at else None}


def configure_root(path: str | Path) -> None:
    """Where this process keeps blobs (the server: ``<data dir>/artifacts``)."""
    _root_override[:] = [Path(path).resolve()]


def artifacts_root(store: RunStore) -> Path:
    if _root_override:
        return _root_override[0]
    url = str(getattr(store, "url", ""))
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        return Path(url.removeprefix("sqlite:///")).resolve().parent / "artifacts"
    return Path.cwd() / ".worldtree" / "artifacts"


def _rows(store: RunStore) -> Any:
    from worldtree.store.server_data import ArtifactRows, engine_of

    return ArtifactRows(engine_of(store))


#: A workspace walk stops past this many entries (a glob is matched against every path in it).
MAX_WALK_ENTRIES = 200_000


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A '/'-separated glob as a regex: ``*`` and ``?`` stay in one path segment, ``**`` spans any
    number of them, ``[...]`` is a character class."""
    out: list[str] = []
    i = 0
    text = pattern.strip().replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    while i < len(text):
        if text.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif text.startswith("**", i):
            out.append(".*")
            i += 2
        elif text[i] == "*":
            out.append("[^/]*")
            i += 1
        elif text[i] == "?":
            out.append("[^/]")
            i += 1
        elif text[i] == "[" and "]" in text[i + 2:]:
            end = text.index("]", i + 2)
            body = text[i + 1:end]
            out.append("[" + ("^" + re.escape(body[1:]) if body.startswith("!") else re.escape(body)) + "]")
            i = end + 1
        else:
            out.append(re.escape(text[i]))
            i += 1
    return re.compile("".join(out).rstrip("/"))


def matches(workspace: str | Path, rule: ArtifactRule) -> list[str]:
    """The files ``rule`` names, relative to ``workspace`` ('/'-separated, sorted); ArtifactError when
    one leads out of it. A pattern naming a directory takes the files under it.

    The workspace is walked once without following directory symlinks (a link loop cannot blow it up);
    every matching file, or symlink to a file or directory, must resolve inside the workspace."""
    base = os.path.realpath(workspace)
    patterns = [glob_regex(p) for p in rule.paths]
    found: set[str] = set()
    refused: list[str] = []
    seen = 0
    for directory, dirs, files in os.walk(base, followlinks=False):
        entries = files + [d for d in dirs if os.path.islink(os.path.join(directory, d))]
        seen += len(entries) + len(dirs)
        if seen > MAX_WALK_ENTRIES:
            raise ArtifactError(f"artifacts: the workspace holds over {MAX_WALK_ENTRIES} entries; collect an archive "
                                "(tar the files in a step) instead of that many files")
        for name in entries:
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, base).replace(os.sep, "/")
            if not _named(relative, patterns):
                continue
            real = os.path.realpath(path)
            if not real.startswith(base + os.sep):
                refused.append(f"{relative} -> {real}")
            elif os.path.isfile(real):
                found.add(relative)
    if refused:
        raise ArtifactError(f"artifact paths lead outside the workspace (symlinks): {', '.join(refused[:5])}; "
                            "only files inside the job's workspace are collected")
    if len(found) > MAX_FILES:
        raise ArtifactError(f"artifacts: {len(found)} files match {rule.paths}; at most {MAX_FILES} per job: "
                            "narrow the globs")
    return sorted(found)


def _named(relative: str, patterns: list[re.Pattern[str]]) -> bool:
    """``relative`` or one of its parent directories matches a pattern."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(len(parts), 0, -1)]
    return any(p.fullmatch(prefix) for p in patterns for prefix in prefixes)


def collect(store: RunStore, run_id: str, attempt: int, job: str, workspace: str | Path,
            rule: ArtifactRule) -> list[Artifact]:
    """Copy the job's matching files into the blob store and record them (nothing when one is refused)."""
    names = matches(workspace, rule)
    root = artifacts_root(store)
    base = os.path.realpath(workspace)
    stored = [(name, *_store_blob(root, os.path.join(base, name))) for name in names]
    # created after the blobs were written: purge tells a blob rewritten since (mtime later) from a stale one
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=rule.expire_in) if rule.expire_in is not None else None
    made = [Artifact("art_" + secrets.token_hex(8), run_id, attempt, job, name, digest, size, now, expires)
            for name, digest, size in stored]
    from worldtree.store.server_data import ArtifactRow

    _rows(store).add([ArtifactRow(**a.__dict__) for a in made])
    return made


def add_file(store: RunStore, run_id: str, attempt: int, job: str, path: str, src: BinaryIO,
             expire_in: float | None = DEFAULT_EXPIRE_SECONDS) -> Artifact:
    """Record one file whose content is ``src`` (an agent collected it in its own workspace and uploads
    it): stored and recorded as :func:`collect` does. ArtifactError for a path that leaves the workspace."""
    try:
        check_glob(path)
    except ValueError as exc:
        raise ArtifactError(str(exc)) from None
    name = posixpath.normpath(path.replace("\\", "/"))
    if name in (".", "") or any(c in name for c in "*?["):
        raise ArtifactError(f"artifact path {path!r}: give the file's path relative to the workspace")
    digest, size = _store_blob(artifacts_root(store), src)
    now = datetime.now(UTC)
    made = Artifact("art_" + secrets.token_hex(8), run_id, attempt, job, name, digest, size, now,
                    now + timedelta(seconds=expire_in) if expire_in is not None else None)
    from worldtree.store.server_data import ArtifactRow

    _rows(store).add([ArtifactRow(**made.__dict__)])
    return made


def _store_blob(root: Path, source: str | BinaryIO) -> tuple[str, int]:
    """Copy a file (path or open binary stream) into ``root`` under its sha256 (written to a temporary
    name, then renamed: atomic)."""
    root.mkdir(parents=True, exist_ok=True)
    hasher = hashlib.sha256()
    size = 0
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as out, (open(source, "rb") if isinstance(source, str)
                                          else contextlib.nullcontext(source)) as src:
            while chunk := src.read(1 << 20):
                hasher.update(chunk)
                out.write(chunk)
                size += len(chunk)
        digest = hasher.hexdigest()
        target = root / digest[:2] / digest
        target.parent.mkdir(exist_ok=True)
        os.replace(tmp, target)
        return digest, size
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def list_artifacts(store: RunStore, run_id: str, job: str | None = None) -> list[Artifact]:
    return [Artifact(**row.__dict__) for row in _rows(store).of_run(run_id, job)]


def get_artifact(store: RunStore, artifact_id: str) -> Artifact:
    from worldtree.app.service import NotFoundError  # service imports runs, which imports this module

    row = _rows(store).get(artifact_id)
    if row is None:
        raise NotFoundError(f"no artifact {artifact_id!r} (it may have expired); GET /api/v1/runs/RUN_ID/artifacts "
                            "lists a run's")
    return Artifact(**row.__dict__)


def open_artifact(store: RunStore, artifact_id: str) -> tuple[Artifact, BinaryIO]:
    """The artifact and its content, open for reading (the caller closes it)."""
    artifact = get_artifact(store, artifact_id)
    path = artifacts_root(store) / artifact.sha256[:2] / artifact.sha256
    try:
        return artifact, open(path, "rb")
    except FileNotFoundError:
        from worldtree.app.service import NotFoundError

        raise NotFoundError(f"artifact {artifact_id}: its content is gone from {artifacts_root(store)} (was the "
                            "data dir wiped, or is this replica's data dir not shared?)") from None


def restore(store: RunStore, run_id: str, jobs: list[str], workspace: str | Path) -> list[str]:
    """Copy the latest artifacts of ``jobs`` into ``workspace``; the paths written."""
    latest: dict[tuple[str, str], Artifact] = {}
    for job in jobs:
        for artifact in list_artifacts(store, run_id, job):
            key = (artifact.job, artifact.path)
            if key not in latest or latest[key].attempt <= artifact.attempt:
                latest[key] = artifact
    base = Path(os.path.realpath(workspace))
    written: list[str] = []
    for artifact in latest.values():
        target = (base / artifact.path).resolve()
        if not str(target).startswith(str(base) + os.sep):
            raise ArtifactError(f"artifact {artifact.id} path {artifact.path!r} would leave the workspace")
        target.parent.mkdir(parents=True, exist_ok=True)
        _, src = open_artifact(store, artifact.id)
        with src, open(target, "wb") as out:
            shutil.copyfileobj(src, out)
        written.append(artifact.path)
    return sorted(written)


def purge(store: RunStore, now: datetime | None = None) -> int:
    """Delete expired artifacts and blobs no record points at; how many records went."""
    gone = _rows(store).delete_expired(now or datetime.now(UTC))
    root = artifacts_root(store)
    if not root.is_dir():
        return len(gone)
    cutoff = time.time() - ORPHAN_GRACE_SECONDS
    candidates = {p.name: p for p in root.glob("??/*") if p.is_file()}
    # Just released blobs need no grace, unless a collection wrote the same content again since
    # (its row may not be in yet): a blob is never newer than the rows made from it.
    released: dict[str, float] = {}
    for g in gone:
        released[g.sha256] = max(released.get(g.sha256, 0.0), g.created_at.timestamp())
    old = {d: p for d, p in candidates.items()
           if p.stat().st_mtime < cutoff or (d in released and p.stat().st_mtime <= released[d])}
    names = list(old)
    for start in range(0, len(names), 500):
        batch = names[start:start + 500]
        kept = _rows(store).referenced(batch)
        for digest in batch:
            if digest not in kept:
                old[digest].unlink(missing_ok=True)
    return len(gone)


def with_artifacts(inner: EngineListener, store: RunStore, run_id: str, attempt: int, graph: ExecutionGraph,
                   workspace: str) -> tuple[EngineListener, Callable[[], None]]:
    """``inner``, plus collection of each job's artifacts when its last node ends; and the close to call
    before the run's writer closes (it waits for collections under way). Pass-through without rules."""
    rules = {sid: scope.artifacts for sid, scope in graph.scopes.items()
             if scope.kind == "job" and scope.artifacts is not None}
    if not rules:
        return inner, lambda: None
    collector = _Collector(inner, store, run_id, attempt, graph, workspace, rules)
    return collector, collector.close


class _Collector:
    """An engine listener: when every node of a job with ``artifacts:`` is terminal, collect on a
    worker thread (never on the engine's loop), and log what happened on the job's last node."""

    def __init__(self, inner: EngineListener, store: RunStore, run_id: str, attempt: int, graph: ExecutionGraph,
                 workspace: str, rules: dict[str, ArtifactRule]) -> None:
        self.inner, self.store, self.run_id, self.attempt, self.workspace = inner, store, run_id, attempt, workspace
        self.rules = rules
        self.members = {sid: [n for n in graph.nodes if sid in n.scopes] for sid in rules}
        self.names = {sid: graph.scopes[sid].name for sid in rules}
        self.states: dict[str, NodeState] = {}
        self.done: set[str] = set()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"artifacts-{run_id}")

    def on_log(self, line: LogLine) -> None:
        self.inner.on_log(line)

    def on_event(self, event: NodeEvent) -> None:
        self.inner.on_event(event)
        self.states[event.node] = NodeState(event.state)
        for sid, nodes in self.members.items():
            if sid in self.done or not all(self.states.get(n.id) in TERMINAL for n in nodes):
                continue
            self.done.add(sid)
            states = [self.states[n.id] for n in nodes]
            if all(s == NodeState.REUSED for s in states):
                continue  # collected by the attempt that ran it
            failed = any(s in UNSUCCESSFUL for s in states)  # as GitLab: allowed to fail is still failed
            when = self.rules[sid].when
            if when == "always" or (when == "on_failure") == failed:
                self.pool.submit(self._collect, sid, nodes[-1].id)

    def _collect(self, sid: str, last_node: str) -> None:
        try:
            made = collect(self.store, self.run_id, self.attempt, self.names[sid], self.workspace, self.rules[sid])
            size = sum(a.size for a in made)
            text = f"artifacts: collected {len(made)} file(s), {size} bytes"
        except ArtifactError as exc:
            text = f"artifacts: {exc}"
        except Exception as exc:  # a full disk must not take the run down; say so where the user looks
            log.exception("run %s: collecting artifacts of %s failed", self.run_id, sid)
            text = f"artifacts: could not collect: {type(exc).__name__}: {exc}"
        self.inner.on_log(LogLine(self.run_id, self.attempt, last_node, "system", text, datetime.now(UTC)))

    def close(self) -> None:
        self.pool.shutdown(wait=True)
