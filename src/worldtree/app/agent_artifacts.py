"""Artifacts of jobs that run on agents: the server side of UploadArtifact and DownloadArtifacts.

An agent runs a job in its own workspace, so the server's collector (:mod:`worldtree.app.artifacts`)
cannot see the files. Instead the agent matches the job's ``artifacts:`` rule in its workspace (with
:func:`worldtree.app.artifacts.matches`, the same globs and escape checks) and uploads each file
before it reports the job's last step; :func:`upload` stores it with
:func:`~worldtree.app.artifacts.add_file`. Because the report waits for the uploads, the server's
machine has not dispatched any job that needs this one yet: when that job's agent asks for
:func:`needed`, the files are there (no wait, no extra state).

Both are fenced by the job's lease token, like every other report of an agent: an agent that lost
the job can neither add files to it nor read its run's artifacts through it.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from typing import BinaryIO

from worldtree.app.agents import rows_of
from worldtree.app.artifacts import Artifact, ArtifactError, add_file, list_artifacts
from worldtree.errors import WorldtreeError
from worldtree.model.graph import ExecutionGraph
from worldtree.store.agents import JobRow
from worldtree.store.api import RunStore


class StaleLease(WorldtreeError):
    """The agent does not hold the job with that token (any more): a refused report (FAILED_PRECONDITION),
    neither a usage error nor an unknown thing."""


def _held(store: RunStore, agent_id: str, job_id: str, token: int) -> JobRow:
    job = rows_of(store).job(job_id)
    if job is None or job.state != "claimed" or job.agent_id != agent_id or job.lease_token != token:
        raise StaleLease(f"stale lease token {token} for job {job_id}: this agent no longer holds it")
    return job


def _run_graph(store: RunStore, job: JobRow) -> ExecutionGraph:
    """The run's whole graph (the job row's own copy is not read: only a claim hands it out)."""
    run = store.get_run(job.run_id)
    if run is None or not run.graph_json:
        raise LookupError(f"run {job.run_id} of agent job {job.id} is gone")
    return ExecutionGraph.model_validate_json(run.graph_json)


def job_name(graph: ExecutionGraph, node_id: str) -> str | None:
    """The name of the job scope ``node_id`` belongs to (the name artifacts are recorded under)."""
    node = graph.by_id().get(node_id)
    if node is None:
        return None
    for sid in node.scopes:
        scope = graph.scopes.get(sid)
        if scope is not None and scope.kind == "job":
            return scope.name
    return None


def upload(store: RunStore, agent_id: str, job_id: str, token: int, path: str, src: BinaryIO,
           sha256: str | Callable[[], str]) -> Artifact:
    """Record one file of the job's ``artifacts:`` sent by the agent holding it. The expiry comes from
    the rule in the job's graph (the server's copy, not the agent's word); ArtifactError for a path that
    leaves the workspace or content whose sha256 is not the one announced (``sha256`` may be a callable,
    asked once the content was read: it can arrive with the last chunk)."""
    job = _held(store, agent_id, job_id, token)
    graph = _run_graph(store, job)
    own = [n for n in graph.nodes if n.job == job.job]
    name = (job_name(graph, own[0].id) if own else None) or job.job
    rule = next((s.artifacts for s in graph.scopes.values() if s.kind == "job" and s.name == name), None)
    if rule is None:
        raise ArtifactError(f"job {job.job} declares no artifacts: nothing to upload")
    hasher = hashlib.sha256()
    with tempfile.SpooledTemporaryFile(max_size=8 << 20) as spool:
        while chunk := src.read(1 << 20):
            hasher.update(chunk)
            spool.write(chunk)
        announced = sha256() if callable(sha256) else sha256
        if announced and hasher.hexdigest() != announced.lower():
            raise ArtifactError(f"artifact {path!r}: the content's sha256 is {hasher.hexdigest()}, the agent announced "
                                f"{announced}; the upload was damaged, send it again")
        spool.seek(0)
        return add_file(store, job.run_id, job.attempt, name, path, spool,  # type: ignore[arg-type]
                        expire_in=rule.expire_in)


def needed(store: RunStore, agent_id: str, job_id: str, token: int) -> list[Artifact]:
    """The latest artifacts (per job and path) of the jobs the agent's job ``needs``, for its workspace."""
    job = _held(store, agent_id, job_id, token)
    graph = _run_graph(store, job)
    own = [n for n in graph.nodes if n.job == job.job]
    mine = {n.id for n in own}
    jobs = {name for node in own for need in node.needs if need not in mine
            and (name := job_name(graph, need)) is not None}
    latest: dict[tuple[str, str], Artifact] = {}
    for name in sorted(jobs):
        for artifact in list_artifacts(store, job.run_id, name):
            key = (artifact.job, artifact.path)
            if key not in latest or latest[key].attempt <= artifact.attempt:
                latest[key] = artifact
    return sorted(latest.values(), key=lambda a: (a.job, a.path))


def collected_here(graph: ExecutionGraph) -> ExecutionGraph:
    """``graph`` without the ``artifacts:`` of jobs that run on agents: their agent uploads those, so the
    server's collector must not also match the rule in the server's own workspace (nothing there, or
    worse, unrelated files recorded under the job)."""
    from worldtree.app.agents import AgentSettings, routed

    settings = AgentSettings.from_env()
    remote = {sid for n in graph.nodes if routed(n, settings) for sid in n.scopes}
    scopes = {sid: (s.model_copy(update={"artifacts": None}) if sid in remote and s.kind == "job" else s)
              for sid, s in graph.scopes.items()}
    return graph.model_copy(update={"scopes": scopes})
