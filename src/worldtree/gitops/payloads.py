"""The webhook events worldtree acts on, parsed (pydantic) and normalised into one :class:`GitEvent`.

GitHub (tested against octokit's recorded payloads), Gitea (GitHub's shape with its own action
names: ``synchronized``) and GitLab (``object_kind``; merge requests ``open``/``update``/
``reopen``). Only the fields used are modelled; everything else in a payload is ignored, so a
provider adding fields breaks nothing. A payload missing a field worldtree needs is a 422 that
names it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from worldtree.errors import UsageError

ZERO_SHA = "0" * 40
#: The provider's event names that carry work (anything else is acknowledged and ignored).
PROVIDERS = ("github", "gitlab", "gitea")


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Repo(_Model):
    full_name: str
    clone_url: str | None = None
    default_branch: str | None = None


class _Commit(_Model):
    id: str | None = None
    added: list[str] = []
    modified: list[str] = []
    removed: list[str] = []


class GithubPush(_Model):
    ref: str
    before: str | None = None
    after: str
    created: bool = False
    deleted: bool = False
    repository: _Repo
    commits: list[_Commit] | None = None


class _Branch(_Model):
    ref: str
    sha: str


class _PullRequest(_Model):
    number: int | None = None
    head: _Branch
    base: _Branch


class GithubPullRequest(_Model):
    action: str
    number: int | None = None
    pull_request: _PullRequest
    repository: _Repo


class GithubCreate(_Model):
    ref: str
    ref_type: str
    repository: _Repo


class GithubPing(_Model):
    zen: str | None = None
    hook_id: int | None = None
    repository: _Repo | None = None


class _GitlabProject(_Model):
    id: int
    path_with_namespace: str
    git_http_url: str | None = None
    default_branch: str | None = None


class GitlabPush(_Model):
    object_kind: str  # push | tag_push
    ref: str
    before: str | None = None
    after: str
    checkout_sha: str | None = None
    project: _GitlabProject
    commits: list[_Commit] | None = None


class _MergeAttributes(_Model):
    iid: int | None = None
    action: str | None = None
    source_branch: str
    target_branch: str
    last_commit: _Commit


class GitlabMergeRequest(_Model):
    object_kind: str
    project: _GitlabProject
    object_attributes: _MergeAttributes


@dataclass(frozen=True)
class GitEvent:
    """One event, the same whatever the provider: what ``on:`` filters and the run's environment see."""

    provider: str
    kind: str  # push | pull_request | create | ping | ignored
    repository: str  # owner/name (GitLab: path_with_namespace)
    ref: str = ""  # refs/heads/x, refs/tags/v1 (a pull request: refs/pull/N/head)
    sha: str = ""
    action: str = ""  # pull_request: opened | synchronize | reopened | ...
    base_ref: str = ""  # pull_request: the target branch's name
    head_ref: str = ""  # pull_request: the source branch's name
    #: files the push changed; None when the payload does not say (then path filters match)
    paths: list[str] | None = None
    deleted: bool = False
    project_id: int | None = None  # GitLab's numeric project id (its status API takes it)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def branch(self) -> str | None:
        return self.ref.removeprefix("refs/heads/") if self.ref.startswith("refs/heads/") else None

    @property
    def tag(self) -> str | None:
        return self.ref.removeprefix("refs/tags/") if self.ref.startswith("refs/tags/") else None

    @property
    def ref_name(self) -> str:
        """``CI_COMMIT_REF_NAME``: the branch or tag name (a pull request: its source branch)."""
        if self.kind == "pull_request":
            return self.head_ref
        return self.branch or self.tag or self.ref


#: GitHub/Gitea pull request actions worldtree runs on, by the provider's spelling.
_PR_ACTIONS = {"opened": "opened", "synchronize": "synchronize", "synchronized": "synchronize",
               "reopened": "reopened"}
_GITLAB_MR_ACTIONS = {"open": "opened", "update": "synchronize", "reopen": "reopened"}


def parse_event(provider: str, event: str, body: bytes) -> GitEvent:
    """The normalised event for the provider's ``event`` header and raw body; UsageError when malformed."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: '[' * 100000 (was a 500)
        raise UsageError("the webhook body is not JSON; send the provider's JSON payload "
                         "(content type application/json)") from None
    if not isinstance(data, dict):
        raise UsageError("the webhook body must be a JSON object")
    try:
        if provider == "gitlab":
            return _gitlab(event, data)
        return _github_like(provider, event, data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UsageError(f"the {provider} {event} payload has no valid `{where}`: {first['msg']}; "
                         "is the webhook's content type application/json?") from None


def repository_name(provider: str, body: bytes) -> str | None:
    """Just the repository a payload is about (to find its secret before trusting anything else)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: before the signature, a 500
        return None
    if not isinstance(data, dict):
        return None
    holder = data.get("project" if provider == "gitlab" else "repository")
    if not isinstance(holder, dict):
        return None
    name = holder.get("path_with_namespace" if provider == "gitlab" else "full_name")
    return name if isinstance(name, str) else None


def _github_like(provider: str, event: str, data: dict[str, Any]) -> GitEvent:
    if event == "push":
        push = GithubPush.model_validate(data)
        paths = _paths(push.commits) if push.commits is not None else None
        return GitEvent(provider, "push", push.repository.full_name, ref=push.ref, sha=push.after, paths=paths,
                        deleted=push.deleted or push.after == ZERO_SHA)
    if event == "pull_request":
        pr = GithubPullRequest.model_validate(data)
        number = pr.number or pr.pull_request.number or 0
        return GitEvent(provider, "pull_request", pr.repository.full_name, ref=f"refs/pull/{number}/head",
                        sha=pr.pull_request.head.sha, action=_PR_ACTIONS.get(pr.action, pr.action),
                        base_ref=pr.pull_request.base.ref, head_ref=pr.pull_request.head.ref)
    if event == "create":
        create = GithubCreate.model_validate(data)
        prefix = "refs/tags/" if create.ref_type == "tag" else "refs/heads/"
        return GitEvent(provider, "create", create.repository.full_name, ref=prefix + create.ref)
    if event == "ping":
        ping = GithubPing.model_validate(data)
        return GitEvent(provider, "ping", ping.repository.full_name if ping.repository else "")
    name = repository_name(provider, json.dumps(data).encode()) or ""
    return GitEvent(provider, "ignored", name, extra={"event": event})


def _gitlab(event: str, data: dict[str, Any]) -> GitEvent:
    kind = data.get("object_kind") or {"Push Hook": "push", "Tag Push Hook": "tag_push",
                                       "Merge Request Hook": "merge_request"}.get(event, event)
    if kind in ("push", "tag_push"):
        push = GitlabPush.model_validate(data)
        paths = _paths(push.commits) if push.commits is not None else None
        sha = push.checkout_sha or push.after
        return GitEvent("gitlab", "push", push.project.path_with_namespace, ref=push.ref, sha=sha, paths=paths,
                        deleted=push.after == ZERO_SHA, project_id=push.project.id)
    if kind == "merge_request":
        mr = GitlabMergeRequest.model_validate(data)
        attrs = mr.object_attributes
        action = _GITLAB_MR_ACTIONS.get(attrs.action or "", attrs.action or "")
        return GitEvent("gitlab", "pull_request", mr.project.path_with_namespace,
                        ref=f"refs/merge-requests/{attrs.iid or 0}/head", sha=attrs.last_commit.id or "",
                        action=action, base_ref=attrs.target_branch, head_ref=attrs.source_branch,
                        project_id=mr.project.id)
    project = data.get("project")
    name = project.get("path_with_namespace", "") if isinstance(project, dict) else ""
    return GitEvent("gitlab", "ignored", str(name), extra={"event": kind})


def _paths(commits: list[_Commit]) -> list[str]:
    seen: dict[str, None] = {}
    for commit in commits:
        for path in (*commit.added, *commit.modified, *commit.removed):
            seen[path] = None
    return list(seen)
