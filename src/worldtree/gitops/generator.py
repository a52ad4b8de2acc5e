"""Seed 002's Workflow Generator: a queued delivery becomes a run of the commit's pipeline file.

Consumer threads in every server replica claim deliveries from the store (compare-and-set with
a lease: a consumer that dies mid-way is replaced when the lease ends, so each delivery is
handled at least once) and, for each:

1. fetches the commit into the repository's cached mirror (:mod:`.checkout`);
2. reads the pipeline file: the repository's ``--ci-file``, else ``ci.yaml``, else ``.worldtree.yaml``;
3. evaluates ``on:`` (:mod:`.triggers`); a push to the default branch also (re)registers the
   file's ``on.schedule`` crons;
4. checks the commit out as a worktree at ``<data dir>/workspaces/gitops-<delivery row id>``
   and submits the document through :func:`worldtree.app.service.submit` with the event in the
   steps' environment (``CI=true``, ``CI_COMMIT_SHA``, ``CI_COMMIT_REF_NAME``, ``CI_REPOSITORY``,
   ``CI_EVENT``; on GitHub also ``GITHUB_SHA``, ``GITHUB_REF``, ``GITHUB_REPOSITORY``,
   ``GITHUB_EVENT_NAME``).

Idempotent by delivery: the workspace path is derived from the delivery, so a consumer that
finds a run already created for it (it died between submit and recording) records that run
instead of creating a second one. A broken pipeline file ends the delivery ``failed`` with the
located error; git or store trouble is retried (three tries) through the lease.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from worldtree.app import service
from worldtree.app.secrets_store import SecretKeys
from worldtree.errors import SpecError, StoreError, UsageError, WorldtreeError
from worldtree.gitops.checkout import GitError, Mirror
from worldtree.gitops.payloads import GitEvent, parse_event
from worldtree.gitops.repos import gitops_store
from worldtree.gitops.triggers import evaluate
from worldtree.store.api import RunStore
from worldtree.store.gitops import DeliveryRow, RepositoryRow

log = logging.getLogger("worldtree.gitops")

#: Looked for in this order when the repository names no file.
PIPELINE_FILES = ("ci.yaml", ".worldtree.yaml")
#: Tries of one delivery before it is marked failed (git unreachable, store away).
MAX_TRIES = 3


def ci_env(event: GitEvent, sha: str, kind: str | None = None) -> dict[str, str]:
    """The variables a run started by ``event`` sees (GitLab CI's names, plus GitHub Actions' on GitHub)."""
    kind = kind or event.kind
    env = {"CI": "true", "CI_COMMIT_SHA": sha, "CI_COMMIT_REF_NAME": event.ref_name, "CI_COMMIT_REF": event.ref,
           "CI_REPOSITORY": event.repository, "CI_EVENT": kind, "CI_PROVIDER": event.provider}
    if event.kind == "pull_request":
        env["CI_PULL_REQUEST_TARGET_BRANCH"] = event.base_ref
    if event.provider == "github":
        env.update({"GITHUB_ACTIONS": "false", "GITHUB_SHA": sha, "GITHUB_REF": event.ref,
                    "GITHUB_REPOSITORY": event.repository, "GITHUB_EVENT_NAME": kind})
        if event.kind == "pull_request":
            env.update({"GITHUB_BASE_REF": event.base_ref, "GITHUB_HEAD_REF": event.head_ref})
    return env


def raw_on(document: str, filename: str) -> dict[str, Any] | None:
    """The document's ``on:`` as plain data, shorthands (``on: push``, ``on: [push, pull_request]``) expanded."""
    from worldtree.compile.yaml_source import YamlSourceError, load_yaml

    try:
        data, _, _ = load_yaml(document, filename)
    except YamlSourceError as exc:  # not YAML: the located message, as the loader gives it
        raise SpecError([exc.diagnostic]) from None
    value = data.get("on") if isinstance(data, dict) else None
    if value is None:
        return None
    if isinstance(value, str):
        return {value: {}}
    if isinstance(value, list):
        return {str(v): {} for v in value}
    if isinstance(value, dict):
        return {str(k): (v if v is not None else {}) for k, v in value.items()}
    raise UsageError(f"{filename}: `on:` must be an event name, a list of them, or a mapping")


def find_pipeline(mirror: Mirror, sha: str, repo: RepositoryRow) -> tuple[str, str] | None:
    """(path, text) of the commit's pipeline file, or None when it has none."""
    for path in ([repo.ci_file] if repo.ci_file else PIPELINE_FILES):
        text = mirror.read(sha, path)
        if text is not None:
            return path, text
    return None


class Generator:
    """Consumes deliveries until ``stop`` is set; ``wake`` is set by the webhook route on every new one."""

    def __init__(self, store: RunStore, config: service.ServiceConfig, secrets: SecretKeys, *, owner: str,
                 wake: threading.Event | None = None, lease_seconds: float = 120.0, poll_seconds: float = 1.0,
                 on_run: Callable[[], None] | None = None, sweep_after: float = 0.0) -> None:
        self.store = store
        self.gitops = gitops_store(store)
        self.config = config
        self.secrets = secrets
        self.owner = owner
        self.wake = wake or threading.Event()
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.on_run = on_run
        #: behind a broker, the store is only swept for deliveries older than this (a publish that failed)
        self.sweep_after = sweep_after

    def serve(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                worked = self.handle_one()
            except StoreError as exc:
                log.error("gitops consumer %s: %s", self.owner, exc)
                worked = False
            except Exception:  # one bad delivery must not stop the consumer
                log.exception("gitops consumer %s: internal error", self.owner)
                worked = False
            if not worked:  # until woken, the poll interval passes, or the server stops (checked twice a second)
                deadline = time.monotonic() + self.poll_seconds
                while not stop.is_set() and not self.wake.wait(min(0.5, max(0.0, deadline - time.monotonic()))):
                    if time.monotonic() >= deadline:
                        break
                self.wake.clear()

    def handle_one(self, only: str | None = None) -> bool:
        """Claim one delivery (``only``: that one) and handle it; False when none could be claimed."""
        delivery = self.gitops.claim_delivery(self.owner, self.lease_seconds, only=only,
                                              older_than=0.0 if only else self.sweep_after)
        if delivery is None:
            return False
        try:
            outcome = self.process(delivery)
        except (SpecError, UsageError) as exc:
            self.gitops.finish_delivery(delivery.id, delivery.tries, state="failed", detail=str(exc)[:2000])
            return True
        except Exception as exc:  # git or the store away (or worldtree broke): try again, a bounded number of times
            if isinstance(exc, GitError | WorldtreeError | OSError):
                log.warning("gitops delivery %s (try %d): %s", delivery.delivery_id, delivery.tries, exc)
            else:
                log.exception("gitops delivery %s (try %d): internal error", delivery.delivery_id, delivery.tries)
            if delivery.tries >= MAX_TRIES:
                known = isinstance(exc, WorldtreeError | OSError)
                detail = str(exc) if known else f"internal error: {type(exc).__name__}"
                self.gitops.finish_delivery(delivery.id, delivery.tries, state="failed", detail=detail[:2000])
            return True  # else the lease runs out and the delivery is claimed again
        self.gitops.finish_delivery(delivery.id, delivery.tries, **outcome)
        if outcome.get("run_id") and self.on_run is not None:
            self.on_run()
        return True

    def settle(self, row_id: str) -> bool:
        """Handle the delivery a broker message names; whether it is settled (the message may be acked)."""
        self.handle_one(only=row_id)
        row = self.gitops.delivery(row_id)
        return row is None or row.state in ("done", "skipped", "failed")

    def process(self, delivery: DeliveryRow) -> dict[str, Any]:
        """The delivery's outcome: ``finish_delivery`` keyword arguments."""
        repo = self.gitops.repository(repo_id=delivery.repository_id)
        if repo is None:
            return {"state": "skipped", "detail": "the repository was removed"}
        event = parse_event(delivery.provider, delivery.event, delivery.payload.encode())
        if event.kind == "push" and event.deleted:
            return {"state": "skipped", "detail": f"{event.ref} was deleted", "ref": event.ref}
        mirror = Mirror(self.config.data_dir, repo.provider, repo.name, repo.clone_url)
        sha = mirror.fetch(event.sha or None, event.ref or None)
        found = find_pipeline(mirror, sha, repo)
        if found is None:
            wanted = repo.ci_file or " or ".join(PIPELINE_FILES)
            return {"state": "skipped", "detail": f"commit {sha[:12]} has no {wanted}", "sha": sha, "ref": event.ref}
        path, document = found
        try:
            on = raw_on(document, path)
            self._register_schedules(repo, event, sha, on, path, delivery.payload)
            decision = evaluate(on, event)
            if not decision.run:
                return {"state": "skipped", "detail": decision.why, "sha": sha, "ref": event.ref}
            run_id, pipeline = self._submit(delivery.id, repo, mirror, sha, path, document, ci_env(event, sha))
        except (SpecError, UsageError) as exc:  # the commit's file is broken: say so on the commit
            return {"state": "failed", "detail": _first_line(exc), "sha": sha, "ref": event.ref,
                    "pipeline": path}
        log.info("gitops: %s %s %s → run %s", repo.name, event.kind, sha[:12], run_id)
        return {"state": "done", "detail": decision.why, "sha": sha, "ref": event.ref, "run_id": run_id,
                "pipeline": pipeline}

    def _submit(self, key: str, repo: RepositoryRow, mirror: Mirror, sha: str, path: str, document: str,
                env: dict[str, str]) -> tuple[str, str]:
        from worldtree.compile.loader import load_pipeline_text

        pipeline = load_pipeline_text(document, path).spec.name
        workspace = str(Path(self.config.data_dir).resolve() / "workspaces" / f"gitops-{key}")
        existing = self.gitops.run_for_workdir(workspace)
        if existing is not None:  # an earlier try created the run and died before recording it
            return existing, pipeline
        if os.path.exists(workspace):  # an earlier try died between checkout and submit
            import shutil

            shutil.rmtree(workspace, ignore_errors=True)
        os.makedirs(os.path.dirname(workspace), exist_ok=True)
        mirror.worktree(sha, workspace)
        created = service.submit(self.store, self.config, document, env=env, filename=f"{repo.name}/{path}",
                                 workdir=workspace)
        return str(created["id"]), pipeline

    def _register_schedules(self, repo: RepositoryRow, event: GitEvent, sha: str, on: dict[str, Any] | None,
                            path: str, payload: str) -> None:
        """A push to the default branch makes its ``on.schedule`` the repository's schedules."""
        if event.kind != "push" or event.branch is None:
            return
        try:
            data = json.loads(payload)
            default = (data.get("repository") or data.get("project") or {}).get("default_branch")
        except (ValueError, AttributeError):
            default = None
        if event.branch != (default or "main"):
            return
        from worldtree.gitops.schedules import entries

        names = []
        for number, (cron, zone) in enumerate(entries(on, path)):
            name = f"{repo.provider}:{repo.name}:{path}#{number + 1}"
            self.gitops.put_schedule(name=name, cron=cron, timezone=zone, repository_id=repo.id, ref=event.ref,
                                     sha=sha)
            names.append(name)
        self.gitops.drop_schedules(repository_id=repo.id, keep=names)


def _first_line(exc: Exception) -> str:
    if isinstance(exc, SpecError) and exc.diagnostics:
        errors = [d for d in exc.diagnostics if d.severity == "error"] or exc.diagnostics
        return errors[0].render()
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
