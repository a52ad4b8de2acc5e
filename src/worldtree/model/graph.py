"""The execution graph: the one plain-data IR every front end compiles to and every backend runs.

It crosses process and machine boundaries (store, agents, Argo), so it is JSON-round-trippable
(``ExecutionGraph.model_validate_json(g.model_dump_json()) == g``) and holds no live objects.
Node ids are derived from names and deterministic, so a retry or an agent refers to the same
node by the same id; :func:`dns_name` gives each id the DNS-1123 form Argo and Kubernetes need.

Stored graphs outlive the code that wrote them, so the graph carries ``schema_version``.
Versions and what changed:

1. (no ``schema_version`` key) the first milestone's graphs.
2. ``schema_version`` added; node paths escape ``/`` inside names (see :func:`path_segment`).
   A version-1 graph loads unchanged: its fields are a subset of version 2's.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from worldtree.model.artifacts import ArtifactRule
from worldtree.model.labels import LabelSelector

#: The version this code writes; it reads every version up to this one.
SCHEMA_VERSION = 2

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
    #: ``idp``: the worldtree server (``host:port``) that runs this step on one of its agents, and
    #: whether to use TLS (``idps://``); see ``model.idp``. Omitted from JSON when unset.
    server: str | None = Field(default=None, exclude_if=lambda v: v is None)
    tls: bool | None = Field(default=None, exclude_if=lambda v: v is None)


class Scope(BaseModel):
    """A pipeline, stage or job: a timeout that applies to every node inside it (seed 003 §12)."""

    id: str
    kind: ScopeKind
    name: str
    timeout: float | None = None
    #: a job's ``artifacts:`` (collected when its last node ends); omitted from JSON when unset
    artifacts: ArtifactRule | None = Field(default=None, exclude_if=lambda v: v is None)


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
    #: which agents may run this node's job (``label_selector``/``labels``, nearest level wins);
    #: None: any agent, or the server's own executors. Omitted from JSON when None, so graphs
    #: without selectors serialize as before.
    selector: LabelSelector | None = Field(default=None, exclude_if=lambda v: v is None)


class ExecutionGraph(BaseModel):
    """Nodes plus the edges implied by their ``needs``; the scheduler's only input."""

    schema_version: int = SCHEMA_VERSION
    name: str
    source: str | None = None
    workdir: str | None = None
    on_failure: Literal["stop", "continue", "rollback"] = "stop"
    env: dict[str, str] = Field(default_factory=dict)
    scopes: dict[str, Scope] = Field(default_factory=dict)
    nodes: list[Node]

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: Any) -> Any:
        """Bring an older stored graph to the current version; refuse one from a newer worldtree."""
        if not isinstance(data, dict):
            return data
        version = data.get("schema_version", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ValueError(f"schema_version must be a positive integer, got {version!r}")
        if version > SCHEMA_VERSION:
            raise ValueError(f"this graph has schema_version {version}, but this worldtree reads versions up to "
                             f"{SCHEMA_VERSION}; upgrade worldtree")
        # 1 -> 2 adds only the version itself (the fields of version 1 are unchanged).
        return {**data, "schema_version": SCHEMA_VERSION}

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


def path_segment(name: str) -> str:
    """A user's name as one segment of a node path: ``/`` inside it becomes U+2215 (DIVISION SLASH).

    Paths join stage, job and step names with ``/``; without this, job ``a`` with step ``b/s`` and
    job ``a/b`` with step ``s`` would both print as ``a/b/s``.
    """
    return name.replace("/", "\u2215")


_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
DNS_NAME_MAX = 63


def dns_name(node_id: str) -> str:
    """The node id as a DNS-1123 label (Argo task and pod names): lowercase alphanumerics and ``-``,
    at most 63 characters, starting and ending alphanumeric.

    An id that already is such a label is kept as is. Any other id is slugged and gets an 8-hex
    suffix hashed from the whole id, so two ids that slug alike (``a/b``, ``a-b``, ``A.b``) or
    share a long prefix still get different names, and the same id always gets the same name.
    """
    if _DNS_LABEL.match(node_id):
        return node_id
    digest = hashlib.sha256(node_id.encode()).hexdigest()[:8]
    base = _SLUG.sub("-", node_id.lower()).strip("-")[:DNS_NAME_MAX - len(digest) - 1].rstrip("-")
    return f"{base}-{digest}" if base else f"n-{digest}"
