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
        names = sorted(p.name for p in artifacts_dir.glob("stackflow.*") if ARTIFACT.match(p.name) and p.is_file())
        return json.dumps(names)

    @server.resource("stackflow://artifacts/{name}", name="stack artifact",
                     description="One stackflow.* file: a plan, the summary, an apply result.")
    def artifact(name: str) -> str:
        if not ARTIFACT.match(name):
            raise ResourceError(f"{name!r} is not a stack artifact (stackflow.<what>.json or .md)")
        try:
            return (artifacts_dir / name).read_text(encoding="utf-8")
        except OSError:
            raise ResourceError(f"no {name} in {artifacts_dir}; run `worldtree stack plan --out` there") from None
