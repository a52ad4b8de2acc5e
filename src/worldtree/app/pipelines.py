"""Stored pipelines (seed 004's pipeline service): definitions kept by name, triggered into runs.

A definition is checked exactly like a submit (loaded, compiled; located diagnostics on error) and
nothing is stored when it fails. ``trigger`` submits the stored document through
:func:`worldtree.app.service.submit` and links the run to the pipeline, which is how ``stop``
finds the runs to cancel (every queued or running run that pipeline's triggers made).
"""

from __future__ import annotations

import re
from typing import Any

from worldtree.app import service
from worldtree.app.service import NotFoundError, ServiceConfig
from worldtree.errors import UsageError
from worldtree.model.graph import ExecutionGraph
from worldtree.store.api import RunStore

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def _rows(store: RunStore) -> Any:
    from worldtree.store.server_data import PipelineRows, engine_of

    return PipelineRows(engine_of(store))


def check(document: str, name: str = "<request>") -> ExecutionGraph:
    """Load and compile ``document`` as a submit would (SpecError, located, when it is not valid)."""
    from worldtree.compile.compiler import compile_pipeline
    from worldtree.compile.loader import load_pipeline_text

    loaded = load_pipeline_text(document, name)
    graph = compile_pipeline(loaded.spec, source=None)
    if any(n.target.hosts for n in graph.nodes):
        raise UsageError("jobs with `hosts:` need an inventory, which the server does not take yet; "
                         "run this pipeline with `worldtree run`")
    return graph


def _check_name(name: str) -> None:
    if not NAME.match(name):
        raise UsageError(f"pipeline name {name[:60]!r}: use letters, digits, '.', '_' and '-' (first a letter or "
                         "digit), at most 200 characters")


def create(store: RunStore, document: str, name: str | None = None) -> dict[str, Any]:
    """Store a new definition (name: ``name``, else the document's ``name:``); ConflictError if taken."""
    graph = check(document, f"pipelines/{name or 'new'}")
    chosen = name or graph.name
    _check_name(chosen)
    _rows(store).create(chosen, document)
    return get(store, chosen)


def replace(store: RunStore, name: str, document: str) -> dict[str, Any]:
    check(document, f"pipelines/{name}")
    if not _rows(store).replace(name, document):
        raise NotFoundError(f"no pipeline {name!r}; POST /api/v1/pipelines creates it")
    return get(store, name)


def get(store: RunStore, name: str) -> dict[str, Any]:
    """The definition, what it holds (stages, jobs, env) and its runs' statistics."""
    row = _rows(store).get(name)
    if row is None:
        raise NotFoundError(f"no pipeline {name!r}; GET /api/v1/pipelines lists them")
    graph = check(row.document, f"pipelines/{name}")
    stages = list(dict.fromkeys(n.stage for n in graph.nodes if n.stage))
    jobs = list(dict.fromkeys(n.job for n in graph.nodes if n.kind == "step"))
    states, newest = _rows(store).run_stats(name)
    counts: dict[str, int] = {}
    for state, number in states.items():
        counts[service._state(state)] = counts.get(service._state(state), 0) + number
    last = {"id": newest[0], "state": service._state(newest[1]), "created_at": newest[2].isoformat()} \
        if newest else None
    return {**_summary(row, sum(counts.values())), "document": row.document, "title": graph.name,
            "stages": stages, "jobs": jobs, "env": graph.env, "runs_by_state": counts, "last_run": last}


def list_pipelines(store: RunStore, *, page: int = 1, page_size: int = 50) -> dict[str, Any]:
    """By name: ``{items, total, page, page_size}`` (items without their documents)."""
    if page < 1 or not 1 <= page_size <= service.MAX_PAGE_SIZE:
        raise UsageError(f"page must be 1 or more and page_size between 1 and {service.MAX_PAGE_SIZE}")
    rows, total = _rows(store).page((page - 1) * page_size, page_size)
    counts = _rows(store).runs_per_pipeline([r.name for r in rows])
    return {"items": [_summary(r, counts.get(r.name, 0)) for r in rows], "total": total, "page": page,
            "page_size": page_size}


def delete(store: RunStore, name: str) -> None:
    """Forget the definition (its runs stay, unlinked)."""
    if not _rows(store).delete(name):
        raise NotFoundError(f"no pipeline {name!r}; GET /api/v1/pipelines lists them")


def trigger(store: RunStore, config: ServiceConfig, name: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Queue a run of the stored definition (``env`` overrides its variables): ``{id, state, pipeline}``."""
    row = _rows(store).get(name)
    if row is None:
        raise NotFoundError(f"no pipeline {name!r}; GET /api/v1/pipelines lists them")
    created = service.submit(store, config, row.document, env=env, filename=f"pipelines/{name}")
    _rows(store).link_run(name, created["id"])
    return {**created, "pipeline": name}


def stop(store: RunStore, name: str, reason: str | None = None) -> dict[str, Any]:
    """Cancel every queued or running run of the pipeline: ``{pipeline, cancelled: [run ids]}``."""
    if _rows(store).get(name) is None:
        raise NotFoundError(f"no pipeline {name!r}; GET /api/v1/pipelines lists them")
    cancelled = [run_id for run_id in _rows(store).active_run_ids(name)
                 if store.request_cancel(run_id, reason or f"pipeline {name} stopped through the API")]
    return {"pipeline": name, "cancelled": sorted(cancelled)}


def _summary(row: Any, runs: int) -> dict[str, Any]:
    return {"name": row.name, "created_at": row.created_at.isoformat(), "updated_at": row.updated_at.isoformat(),
            "runs": runs}
