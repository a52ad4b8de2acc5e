"""MCP resources: the skills (``skill://{name}``, ``skill://index``) and the stack artifacts
(``stackflow://artifacts/{name}``, ``stackflow://artifacts``) of one directory.

Read-only text. A skill is never executed, only read; an artifact name must look like the files
``worldtree stack`` writes (``stackflow.<what>.json`` or ``.md``), so a resource URI cannot reach
any other file of the machine.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError

from worldtree.errors import WorldtreeError
from worldtree.skills import Skill, load_skills
from worldtree.store.api import RunStore

ARTIFACT = re.compile(r"^stackflow\.[a-z][a-z0-9-]{0,40}\.(json|md)$")
#: the largest artifact served: plans and apply results are small; more is not one worldtree wrote
MAX_ARTIFACT = 8 << 20


def _artifact_file(path: Path) -> bool:
    """A regular file, not a link: ``stackflow.x.json -> ~/.ssh/id_rsa`` in the served directory
    would hand the key to the assistant, one to ``/dev/zero`` would never end."""
    return path.is_file() and not path.is_symlink()


def register(server: MCPServer, store_of: Callable[[], RunStore | None], artifacts_dir: Path) -> None:
    def skills() -> dict[str, Skill]:
        try:
            store = store_of()
            rows = None
            if store is not None:
                from worldtree.store.server_data import engine_of
                from worldtree.store.stacks import StackRows

                rows = StackRows(engine_of(store))
            return {s.name: s for s in load_skills(Path.cwd(), rows)}
        except WorldtreeError as exc:
            raise ResourceError(str(exc)) from None

    @server.resource("skill://index", name="skills", mime_type="application/json",
                     description="The skills (name, source, origin, version, sha256); read skill://{name} for one.")
    def skill_index() -> str:
        return json.dumps([s.summary() for s in skills().values()], indent=2)

    @server.resource("skill://{name}", name="skill", mime_type="text/markdown",
                     description="One skill's SKILL.md (text for reading; skills never execute).")
    def skill(name: str) -> str:
        found = skills().get(name)
        if found is None:
            raise ResourceError(f"no skill {name!r}; skill://index lists them")
        return found.content

    @server.resource("stackflow://artifacts", name="stack artifacts", mime_type="application/json",
                     description="The stackflow.* files (plans, summary, apply results) in the served directory.")
    def artifact_index() -> str:
        names = sorted(p.name for p in artifacts_dir.glob("stackflow.*") if ARTIFACT.match(p.name)
                       and _artifact_file(p))
        return json.dumps(names)

    @server.resource("stackflow://artifacts/{name}", name="stack artifact",
                     description="One stackflow.* file: a plan, the summary, an apply result.")
    def artifact(name: str) -> str:
        if not ARTIFACT.match(name):
            raise ResourceError(f"{name!r} is not a stack artifact (stackflow.<what>.json or .md)")
        path = artifacts_dir / name
        try:
            if not _artifact_file(path):
                raise FileNotFoundError(name)
            with path.open("rb") as fh:
                raw = fh.read(MAX_ARTIFACT + 1)
        except OSError:
            raise ResourceError(f"no {name} in {artifacts_dir}; run `worldtree stack plan --out` there") from None
        if len(raw) > MAX_ARTIFACT:
            raise ResourceError(f"{name} is larger than {MAX_ARTIFACT >> 20} MiB; not a stack artifact")
        return raw.decode("utf-8", errors="replace")
