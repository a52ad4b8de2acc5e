"""The job-level view both document shapes share: each job with its stage and its dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from worldtree.model.spec import JobSpec, PipelineSpec, StageSpec


@dataclass(frozen=True)
class JobEntry:
    name: str
    job: JobSpec
    stage: StageSpec | None
    path: tuple[Any, ...]  # where the job is in the document, for diagnostics


def job_entries(spec: PipelineSpec) -> list[JobEntry]:
    if spec.jobs is not None:
        return [JobEntry(key, job, None, ("jobs", key)) for key, job in spec.jobs.items()]
    out = []
    for s, stage in enumerate(spec.stages or []):
        for j, job in enumerate(stage.jobs):
            name = job.name or f"{stage.name}-{j + 1}"
            out.append(JobEntry(name, job, stage, ("stages", s, "jobs", j)))
    return out


def job_dependencies(spec: PipelineSpec, entries: list[JobEntry]) -> dict[str, list[str]]:
    """Job name -> names of jobs it waits for.

    ``needs`` wins over stage order (GitLab's semantics: a job with ``needs`` starts as soon as
    those jobs finish). Otherwise a job waits for the whole previous stage, and in a ``serial``
    stage also for the job before it.
    """
    deps: dict[str, list[str]] = {}
    if spec.jobs is not None:
        return {e.name: list(e.job.needs) for e in entries}
    previous_exits: list[str] = []
    by_stage: dict[int, list[JobEntry]] = {}
    for e in entries:
        by_stage.setdefault(e.path[1], []).append(e)
    for s in sorted(by_stage):
        stage_entries = by_stage[s]
        serial = stage_entries[0].stage is not None and stage_entries[0].stage.run_mode == "serial"
        before: str | None = None
        for e in stage_entries:
            if e.job.needs:
                deps[e.name] = list(e.job.needs)
            elif serial and before is not None:
                deps[e.name] = [before]
            else:
                deps[e.name] = list(previous_exits)
            before = e.name
        previous_exits = [stage_entries[-1].name] if serial else [e.name for e in stage_entries]
    return deps
