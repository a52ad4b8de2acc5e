"""Seed 002's Status Reporter: each run started by a webhook shows on its commit, pending then final.

A thread per replica, driven by the store (never by the run): it lists deliveries whose run's
state differs from the last status posted, claims the next post with a compare-and-set (so two
replicas do not both post it), and posts it:

* GitHub: ``POST {api}/repos/{owner}/{repo}/statuses/{sha}`` (``Authorization: Bearer``);
* Gitea: the same path under its ``/api/v1`` (``Authorization: token``);
* GitLab: ``POST {api}/projects/{url-encoded path}/statuses/{sha}`` (``PRIVATE-TOKEN``), with
  GitLab's state names (``failed``, ``canceled``) and ``name`` for the context.

``target_url`` is ``$WORLDTREE_PUBLIC_URL/console/runs/{id}``, ``context`` ``worldtree/<pipeline>``.
A 5xx, 429 or network error is retried with exponential backoff (1 s … 60 s, 8 tries); another 4xx
(a bad token, an unknown commit) is given up at once and logged. A run that finishes before its
pending status was posted still gets pending first, then its result. A commit whose pipeline
file is broken gets ``error`` with the located message (``ci.yaml:4:7: …``) as its description.
The status token is decrypted only to build the request and never logged.
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import quote

import httpx

from worldtree.app.secrets_store import SecretKeys
from worldtree.errors import StoreError
from worldtree.gitops.repos import gitops_store
from worldtree.store.api import RunStore
from worldtree.store.gitops import DeliveryRow, RepositoryRow

log = logging.getLogger("worldtree.gitops")

DEFAULT_API = {"github": "https://api.github.com", "gitlab": "https://gitlab.com/api/v4", "gitea": None}
_GITLAB_STATE = {"pending": "pending", "success": "success", "failure": "failed", "error": "canceled"}
_DESCRIPTION = {"pending": "worldtree: running", "success": "worldtree: succeeded",
                "failure": "worldtree: failed", "error": "worldtree: cancelled or errored"}


def commit_state(run_state: str | None) -> str:
    """The commit status a run in ``run_state`` shows (None: no run, the pipeline file was broken)."""
    if run_state is None:
        return "error"
    if run_state == "succeeded":
        return "success"
    if run_state in ("failed", "timed_out"):
        return "failure"
    if run_state in ("cancelled", "error"):
        return "error"
    return "pending"


class PostError(Exception):
    def __init__(self, message: str, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class Reporter:
    """Posts due commit statuses until ``stop`` is set."""

    def __init__(self, store: RunStore, secrets: SecretKeys, *, public_url: str, poll_seconds: float = 0.5,
                 timeout: float = 10.0, max_tries: int = 8, backoff: float = 1.0) -> None:
        self.store = store
        self.gitops = gitops_store(store)
        self.secrets = secrets
        self.public_url = public_url.rstrip("/")
        self.poll_seconds = poll_seconds
        self.timeout = timeout
        self.max_tries = max_tries
        self.backoff = backoff
        self.client = httpx.Client(timeout=timeout)

    def serve(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    self.report_due()
                except StoreError as exc:
                    log.error("status reporter: %s", exc)
                except Exception:
                    log.exception("status reporter: internal error")
                stop.wait(self.poll_seconds)
        finally:
            self.client.close()

    def report_due(self) -> int:
        """Post what is due now; how many statuses were posted."""
        posted = 0
        repos: dict[str, RepositoryRow | None] = {}
        for due in self.gitops.unreported():
            row, run_state = due.delivery, due.run_state
            want = commit_state(run_state)
            retried = row.reported_attempt is not None and row.reported_attempt != due.run_attempt
            if want == row.reported and not retried:
                continue
            if row.repository_id not in repos:
                repos[row.repository_id] = self.gitops.repository(repo_id=row.repository_id)
            repo = repos[row.repository_id]
            if repo is None or repo.status_token is None or not row.sha:
                self.gitops.reported(row.id, "skipped")  # nothing to post with: settled
                continue
            if not self.gitops.claim_report(row.id, row.report_tries, self.timeout * 3):
                continue
            try:
                if want != "pending" and row.run_id and (row.reported is None or retried):
                    self.post(repo, row, "pending")  # a fast run (or retry) still shows pending first
                self.post(repo, row, want)
            except PostError as exc:
                tries = row.report_tries + 1
                give_up = not exc.retry or tries >= self.max_tries
                log.warning("commit status for %s %s: %s%s", repo.name, (row.sha or "")[:12], exc,
                            " (giving up)" if give_up else f" (try {tries}, again later)")
                self.gitops.report_failed(row.id, min(60.0, self.backoff * 2 ** (tries - 1)), give_up)
                continue
            self.gitops.reported(row.id, want, due.run_attempt)
            posted += 1
        return posted

    def post(self, repo: RepositoryRow, row: DeliveryRow, state: str) -> None:
        url, headers, body = self.request(repo, row, state)
        try:
            response = self.client.post(url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise PostError(f"{type(exc).__name__} posting to {url}", retry=True) from None
        if response.status_code >= 500 or response.status_code == 429:
            raise PostError(f"{response.status_code} from {url}", retry=True)
        if response.status_code >= 400:
            raise PostError(f"{response.status_code} from {url}: {response.text[:200]}", retry=False)

    def request(self, repo: RepositoryRow, row: DeliveryRow, state: str) -> tuple[str, dict[str, str], dict[str, Any]]:
        try:
            token = self.secrets.decrypt(repo.status_token or "")
        except Exception:  # a key that changed: retrying cannot help, and the message names no secret
            raise PostError(f"the status token of {repo.name} cannot be decrypted with this server's key; "
                            "register the repository again", retry=False) from None
        api = repo.api_url or DEFAULT_API[repo.provider]
        if api is None:
            raise PostError(f"{repo.provider} repository {repo.name} has no --api-url for statuses", retry=False)
        context = f"worldtree/{row.pipeline or 'pipeline'}"
        target = f"{self.public_url}/console/runs/{row.run_id}" if row.run_id else f"{self.public_url}/console"
        description = _DESCRIPTION[state] if row.run_id else f"worldtree: {row.detail or 'the pipeline file is broken'}"
        if len(description) > 140:  # GitHub refuses longer ones
            description = description[:137] + "..."
        sha = row.sha or ""
        if repo.provider == "gitlab":
            url = f"{api}/projects/{quote(repo.name, safe='')}/statuses/{sha}"
            body = {"state": _GITLAB_STATE[state], "name": context, "target_url": target,
                    "description": description}
            if row.ref and row.ref.startswith(("refs/heads/", "refs/tags/")):
                body["ref"] = row.ref.split("/", 2)[2]
            return url, {"PRIVATE-TOKEN": token}, body
        url = f"{api}/repos/{repo.name}/statuses/{sha}"
        auth = f"Bearer {token}" if repo.provider == "github" else f"token {token}"
        headers = {"Authorization": auth, "Accept": "application/vnd.github+json"}
        return url, headers, {"state": state, "target_url": target, "context": context,
                              "description": description}
