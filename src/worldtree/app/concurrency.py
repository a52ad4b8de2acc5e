"""A pipeline's ``concurrency: {group, cancel_in_progress}`` on the server (GitHub Actions' semantics).

At submit time the group name is resolved (``${VAR}`` from the pipeline's ``environment`` and the
submit's env overrides; no ``${{ }}`` expressions) and stored in the run's options, where the
claim reads it (:mod:`worldtree.store.admission`): a run of the group waits until every older
one has ended. With ``cancel_in_progress: true`` the submit also asks every older queued or
running run of the group to cancel, so the newest starts as soon as they have stopped.
``worldtree run`` (one local run) ignores the key: there is nothing to queue behind.
"""

from __future__ import annotations

from typing import Any

from worldtree.errors import UsageError
from worldtree.model.refs import expand
from worldtree.model.spec import PipelineSpec
from worldtree.store import admission
from worldtree.store.api import RunStore


def options(spec: PipelineSpec, env: dict[str, str]) -> dict[str, Any]:
    """The run options carrying the group (empty when the pipeline has none)."""
    if spec.concurrency is None:
        return {}
    group = expand(spec.concurrency.group, {**spec.environment, **env}).strip()
    if not group:
        raise UsageError(f"concurrency.group {spec.concurrency.group!r} is empty once its variables are "
                         "expanded; set them in `environment` or name the group plainly")
    return {admission.GROUP_OPTION: group, admission.CANCEL_IN_PROGRESS_OPTION: spec.concurrency.cancel_in_progress}


def supersede(store: RunStore, run_id: str, run_options: dict[str, Any]) -> list[str]:
    """With ``cancel_in_progress``: request the cancel of the group's runs older than ``run_id``."""
    group = run_options.get(admission.GROUP_OPTION)
    if not isinstance(group, str) or not run_options.get(admission.CANCEL_IN_PROGRESS_OPTION):
        return []
    cancelled = []
    for other, _, requested in admission.group_runs(admission.engine_of(store), group):
        if other == run_id:
            break
        if not requested and store.request_cancel(other, f"superseded by run {run_id} in concurrency group {group}"):
            cancelled.append(other)
    return cancelled
