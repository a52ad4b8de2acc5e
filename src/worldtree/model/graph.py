"""The execution graph: the one plain-data IR every front end compiles to and every backend runs.

It crosses process and machine boundaries (store, agents, Argo), so it is JSON-round-trippable
(``ExecutionGraph.model_validate_json(g.model_dump_json()) == g``) and holds no live objects.
Node ids are derived from names and deterministic, so a retry or an agent refers to the same
node by the same id.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

NodeKind = Literal["step", "pre", "post"]
ScopeKind = Literal["pipeline", "stage", "job"]


class RetryPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    max: int = 0
    backoff: float = 1.0
    max_backoff: float = 300.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before try ``attempt + 1`` (attempt counts from 1)."""
        return float(min(self.max_backoff, self.backoff * (2 ** (attempt - 1))))


class Target(BaseModel):
    """Where a node runs. ``kind`` picks the backend; the other fields are that backend's input.

    Kinds: ``host`` (subprocess), ``docker`` (``image``, or a ``plugin``/``language``/``service``
    step), ``ssh`` (``engine`` URL), ``idp`` (agents). Unused fields stay ``None``.
    """

    model_config = ConfigDict(extra="forbid")

    kind: str = "host"
    engine: str | None = None
    image: str | None = None
    image_registry: str | None = None
    image_registry_username: str | None = None
    image_registry_password: str | None = None
    runner: str | None = None
    plugin: dict[str, Any] | None = None
    language: dict[str, Any] | None = None
    service: dict[str, Any] | None = None
    #: inventory names a fan-out job asked for (expanded by compile.fanout into one node per host)
    hosts: list[str] | None = None
    #: the one inventory host this node runs on, after fan-out
    host: str | None = None


class Scope(BaseModel):
    """A pipeline, stage or job: a timeout that applies to every node inside it (seed 003 §12)."""

    id: str
    kind: ScopeKind
    name: str
    timeout: float | None = None


class Node(BaseModel):
    """One unit of work on one target."""

    id: str
    path: str
    name: str
    kind: NodeKind = "step"
    stage: str | None = None
    job: str
    command: str
    shell: str = "sh"
    env: dict[str, str] = Field(default_factory=dict)
    secrets: list[str] = Field(default_factory=list)
    workdir: str | None = None
    timeout: float | None = None
    scopes: list[str] = Field(default_factory=list)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    allow_failure: bool = False
    when: Literal["on_success", "on_failure", "always"] = "on_success"
    condition: str | None = None
    precheck: str | None = None
    rollback: str | None = None
    target: Target = Field(default_factory=Target)
    needs: list[str] = Field(default_factory=list)


class ExecutionGraph(BaseModel):
    """Nodes plus the edges implied by their ``needs``; the scheduler's only input."""

    name: str
    source: str | None = None
    workdir: str | None = None
    on_failure: Literal["stop", "continue", "rollback"] = "stop"
    env: dict[str, str] = Field(default_factory=dict)
    scopes: dict[str, Scope] = Field(default_factory=dict)
    nodes: list[Node]

    def by_id(self) -> dict[str, Node]:
        return {n.id: n for n in self.nodes}

    def edges(self) -> list[tuple[str, str]]:
        return [(dep, n.id) for n in self.nodes for dep in n.needs]

    def dependents(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {n.id: [] for n in self.nodes}
        for n in self.nodes:
            for dep in n.needs:
                out[dep].append(n.id)
        return out

    def descendants(self, roots: set[str]) -> set[str]:
        """``roots`` and every node that transitively needs one of them."""
        children = self.dependents()
        seen = set(roots)
        stack = list(roots)
        while stack:
            for child in children[stack.pop()]:
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return seen


_SLUG = re.compile(r"[^a-z0-9]+")


def slug(name: str) -> str:
    """A node-id segment from a user's name: lower case, ``-`` for runs of other characters."""
    return _SLUG.sub("-", name.lower()).strip("-") or "x"
