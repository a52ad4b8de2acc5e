"""Registering repositories: one function per operation, shared by ``worldtree repo`` and ``/api/v1/repos``.

The webhook secret and the status token are encrypted (Fernet, the key of :mod:`worldtree.app.secrets_store`)
before they reach the store and are never returned: a listing says only whether a token is set.
"""

from __future__ import annotations

import re
from typing import Any

from worldtree.app.secrets_store import SecretKeys, load_keys
from worldtree.app.service import NotFoundError
from worldtree.errors import UsageError
from worldtree.gitops.payloads import PROVIDERS
from worldtree.store.api import RunStore
from worldtree.store.gitops import GitopsStore, RepositoryRow

EXECUTORS = ("local", "agents", "argo")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")
#: ``scheme://user:secret@host``: a credential inside the URL
_PASSWORD_IN_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/@]*:[^/@]*@")


def gitops_store(store: RunStore) -> GitopsStore:
    """The GitOps rows of ``store`` (SQLite or PostgreSQL: the store's own engine)."""
    return GitopsStore(store._engine)  # type: ignore[attr-defined]


def cipher(data_dir: str) -> SecretKeys:
    """The server's secret keys (shared with stored secrets: one key, one key file)."""
    return load_keys(data_dir)


def add(store: RunStore, secrets: SecretKeys, *, name: str, provider: str, clone_url: str, webhook_secret: str,
        status_token: str | None = None, api_url: str | None = None, ci_file: str | None = None,
        executor: str = "local") -> dict[str, Any]:
    """Register ``OWNER/NAME``; the description (without secrets). UsageError on bad input, ConflictError
    when it is registered already."""
    if provider not in PROVIDERS:
        raise UsageError(f"provider must be one of {', '.join(PROVIDERS)}, not {provider!r}")
    if not _NAME.match(name):
        raise UsageError(f"repository {name!r} must be OWNER/NAME (GitLab: GROUP/.../PROJECT)")
    if executor not in EXECUTORS:
        raise UsageError(f"executor must be one of {', '.join(EXECUTORS)}, not {executor!r}")
    if not clone_url.strip():
        raise UsageError("the clone URL is empty; pass the URL `git clone` takes")
    if _PASSWORD_IN_URL.match(clone_url.strip()):
        raise UsageError("the clone URL carries a password or token, which would be stored and shown in the clear; "
                         "use an SSH URL with a deploy key, or a git credential helper of the server's user")
    if not webhook_secret:
        raise UsageError("the webhook secret is empty; the webhook's signature is its only authentication")
    if api_url is not None and not re.match(r"^https?://", api_url):
        raise UsageError(f"api URL {api_url!r} must start with http:// or https://")
    if ci_file is not None and (ci_file.startswith("/") or ".." in ci_file.split("/") or not ci_file.strip()):
        raise UsageError(f"ci file {ci_file!r} must be a path inside the repository (no leading / or ..)")
    row = gitops_store(store).add_repository(
        provider=provider, name=name, clone_url=clone_url.strip(), api_url=api_url.rstrip("/") if api_url else None,
        ci_file=ci_file, executor=executor, webhook_secret=secrets.encrypt(webhook_secret),
        status_token=secrets.encrypt(status_token) if status_token else None)
    return describe(row)


def list_repos(store: RunStore) -> list[dict[str, Any]]:
    return [describe(row) for row in gitops_store(store).repositories()]


def remove(store: RunStore, name: str, provider: str | None = None) -> None:
    """Forget a repository (by ``OWNER/NAME`` or id), its deliveries and schedules."""
    gs = gitops_store(store)
    row = gs.repository(repo_id=name) or gs.repository(provider=provider, name=name)
    if row is None:
        raise NotFoundError(f"no repository {name!r} is registered (ambiguous between providers? pass --provider); "
                            "see `worldtree repo list`")
    gs.remove_repository(row.id)


def describe(row: RepositoryRow) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "provider": row.provider, "clone_url": row.clone_url,
            "api_url": row.api_url, "ci_file": row.ci_file, "executor": row.executor,
            "status_token": row.status_token is not None, "created_at": row.created_at.isoformat()}
