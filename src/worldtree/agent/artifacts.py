"""An agent's side of job artifacts: download what a job needs before its first step, upload what it
declares after its last one.

Ordering, and why no waiting is needed: the upload runs *before* the agent reports the job's last
step, and the server's machine dispatches a job that ``needs`` this one only after that report. So
when the dependent job's agent calls DownloadArtifacts, every file is already stored. The files are
matched with :func:`worldtree.app.artifacts.matches` (the globs and the escape checks of a local run);
downloads are written under the workspace only (a path that would leave it is refused, the step fails).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import posixpath
import tempfile
from collections.abc import AsyncIterator
from typing import BinaryIO

from worldtree.api.agent.v1 import agent_pb2 as apb
from worldtree.api.agent.v1 import agent_pb2_grpc
from worldtree.app.artifacts import matches
from worldtree.errors import BackendError
from worldtree.model.artifacts import ArtifactRule
from worldtree.model.graph import ExecutionGraph

#: bytes per uploaded chunk (well under gRPC's 4 MiB message limit)
CHUNK_BYTES = 1 << 20
Metadata = tuple[tuple[str, str], ...]


def needs_outside(graph: ExecutionGraph) -> bool:
    """Whether a node of this job's graph needs a node of another job (then there is something to fetch)."""
    mine = {n.id for n in graph.nodes}
    return any(need not in mine for n in graph.nodes for need in n.needs)


def rule_for(graph: ExecutionGraph, node_id: str, failed: bool) -> ArtifactRule | None:
    """The job's ``artifacts:`` rule when the end of ``node_id`` is when they are collected: the job's last
    node ended (``on_success``/``always``), or a node failed (``on_failure``/``always``), as GitLab."""
    node = graph.by_id().get(node_id)
    if node is None:
        return None
    scopes = [graph.scopes[s] for s in node.scopes if s in graph.scopes and graph.scopes[s].kind == "job"]
    rule = scopes[0].artifacts if scopes else None
    if rule is None:
        return None
    last = [n for n in graph.nodes if scopes[0].id in n.scopes][-1].id == node_id
    if failed:
        return rule if rule.when in ("on_failure", "always") else None
    return rule if last and rule.when in ("on_success", "always") else None


def target(workspace: str, path: str) -> str:
    """Where a downloaded file goes; BackendError for a path that would leave the workspace."""
    base = os.path.realpath(workspace)
    name = posixpath.normpath(path.replace("\\", "/"))
    if not path or name.startswith(("/", "../")) or name in ("..", "."):
        raise BackendError(f"artifact path {path!r} would leave the job's workspace; refused")
    full = os.path.realpath(os.path.join(base, name))
    if not full.startswith(base + os.sep):
        raise BackendError(f"artifact path {path!r} leads to {full}, outside the job's workspace; refused")
    return full


async def download(stub: agent_pb2_grpc.AgentServiceStub, metadata: Metadata, agent_id: str, job_id: str,
                   token: int, workspace: str) -> tuple[int, int]:
    """Write the artifacts of the jobs ``job_id`` needs into ``workspace``; (files, bytes)."""
    call = stub.DownloadArtifacts(apb.DownloadArtifactsRequest(agent_id=agent_id, job_id=job_id, lease_token=token),
                                  metadata=metadata, timeout=600)
    files = size = 0
    out: BinaryIO | None = None
    tmp = ""
    hasher = hashlib.sha256()
    try:
        async for chunk in call:
            if out is None:
                final = target(workspace, chunk.path)
                os.makedirs(os.path.dirname(final), exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=os.path.dirname(final), prefix=".wt-artifact-")
                out = os.fdopen(fd, "wb")
                hasher = hashlib.sha256()
            await asyncio.to_thread(out.write, chunk.data)
            hasher.update(chunk.data)
            size += len(chunk.data)
            if chunk.last:
                out.close()
                out = None
                if chunk.sha256 and hasher.hexdigest() != chunk.sha256:
                    raise BackendError(f"artifact {chunk.path}: got sha256 {hasher.hexdigest()}, the server sent "
                                       f"{chunk.sha256}")
                os.replace(tmp, target(workspace, chunk.path))
                tmp = ""
                files += 1
    finally:
        if out is not None:
            out.close()
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return files, size


def collect(workspace: str, rule: ArtifactRule) -> list[str]:
    """The workspace's files the rule names (ArtifactError for one leading out: nothing is uploaded)."""
    return matches(workspace, rule)


async def _chunks(agent_id: str, job_id: str, token: int, name: str,
                  path: str) -> AsyncIterator[apb.UploadArtifactRequest]:
    hasher = hashlib.sha256()
    with open(path, "rb") as src:
        data = await asyncio.to_thread(src.read, CHUNK_BYTES)
        while True:
            hasher.update(data)
            following = await asyncio.to_thread(src.read, CHUNK_BYTES)
            yield apb.UploadArtifactRequest(agent_id=agent_id, job_id=job_id, lease_token=token, path=name, data=data,
                                    last=not following, sha256="" if following else hasher.hexdigest())
            if not following:
                return
            data = following


async def upload(stub: agent_pb2_grpc.AgentServiceStub, metadata: Metadata, agent_id: str, job_id: str, token: int,
                 workspace: str, names: list[str]) -> int:
    """Send each named file (one UploadArtifact call per file); the bytes sent."""
    base = os.path.realpath(workspace)
    total = 0
    for name in names:
        resp = await stub.UploadArtifact(_chunks(agent_id, job_id, token, name, os.path.join(base, name)),
                                         metadata=metadata, timeout=600)
        total += resp.size
    return total
