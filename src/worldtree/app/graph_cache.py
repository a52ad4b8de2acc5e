"""A cache of compiled graphs for large pipeline files, like ``__pycache__`` for YAML.

Parsing a 25 KB pipeline (500 jobs) costs 50 ms, an 830 KB one (2,000 jobs, 97,500 ``needs``)
half a second, while loading the compiled graph back from JSON costs pydantic-core a few
milliseconds. The key is
a hash of everything the graph depends on: the file's bytes and path, the inventory's bytes,
``--env`` overrides, ``--strict`` and worldtree's version. Small files are not cached: they
parse faster than a cache lookup pays back.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from worldtree import __version__
from worldtree.compile.diagnostics import Diagnostic
from worldtree.model.graph import ExecutionGraph

#: Files smaller than this are always parsed.
MIN_CACHED_BYTES = 16 * 1024


def cache_dir() -> Path:
    base = os.environ.get("WORLDTREE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "worldtree")
    return Path(base) / "graphs"


def cache_key(file: str, strict: bool, env: dict[str, str], inventory: str | None) -> str | None:
    """None when the file is small (or unreadable: the loader reports that)."""
    try:
        data = Path(file).read_bytes()
    except OSError:
        return None
    if len(data) < MIN_CACHED_BYTES or os.environ.get("WORLDTREE_NO_GRAPH_CACHE"):
        return None
    digest = hashlib.sha256()
    for part in (__version__, os.path.abspath(file), file, str(strict), json.dumps(env, sort_keys=True)):
        digest.update(part.encode() + b"\0")
    digest.update(data)
    if inventory:
        try:
            digest.update(Path(inventory).read_bytes())
        except OSError:
            return None
    return digest.hexdigest()


def load_cached(key: str) -> tuple[ExecutionGraph, list[Diagnostic]] | None:
    path = cache_dir() / f"{key}.json"
    try:
        raw = json.loads(path.read_bytes())
        graph = ExecutionGraph.model_validate(raw["graph"])
        warnings = [Diagnostic(**d) for d in raw["warnings"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or damaged: parse again
    return graph, warnings


def store_cached(key: str, graph: ExecutionGraph, warnings: list[Diagnostic]) -> None:
    """Write atomically; a cache that cannot be written is silently skipped."""
    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"graph": graph.model_dump(mode="json"), "warnings": [d.as_dict() for d in warnings]})
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        with os.fdopen(fd, "w") as out:
            out.write(body)
        os.replace(tmp, directory / f"{key}.json")
    except OSError:
        pass
