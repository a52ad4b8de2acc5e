"""Where a plugin is: ``./plugins/`` first (a repository pins its own), then ``$PATH``."""

from __future__ import annotations

import os
from pathlib import Path

from worldtree.errors import UsageError

PREFIXES = ("stackflow-plugin-", "worldtree-plugin-")


def plugin_names(domain: str, name: str) -> list[str]:
    return [f"{prefix}{domain}-{name}" for prefix in PREFIXES]


def find_plugin(domain: str, name: str, plugins_dir: Path | None = None, path: str | None = None) -> Path:
    """The first executable named for (domain, name); a UsageError naming what was looked for."""
    local = plugins_dir if plugins_dir is not None else Path("plugins")
    search = [local, *(Path(p) for p in (os.environ.get("PATH", "") if path is None else path).split(os.pathsep) if p)]
    names = plugin_names(domain, name)
    for directory in search:
        for candidate in names:
            found = directory / candidate
            if found.is_file() and os.access(found, os.X_OK):
                return found.resolve()
    raise UsageError(f"no plugin for {domain} {name!r}: looked for {' or '.join(names)} in {local}/ and on $PATH; "
                     f"install one there (plugin spec v1), or make it executable")
