"""Payload models against octokit's recorded GitHub payloads; GitLab and Gitea shapes; signatures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from worldtree.errors import UsageError
from worldtree.gitops.payloads import parse_event, repository_name
from worldtree.gitops.signatures import sign, verify

DATA = Path(__file__).parent / "data"


def _github(name: str) -> bytes:
    return (DATA / name).read_bytes()


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.json")))
def test_every_recorded_github_payload_parses(name: str) -> None:
    event = parse_event("github", name.split(".")[0], _github(name))
    assert event.provider == "github"
    assert event.kind in ("push", "pull_request", "create", "ping", "ignored")
    if event.kind != "ping":
        assert event.repository == "Codertocat/Hello-World"


def test_github_push_and_pull_request_fields() -> None:
    push = parse_event("github", "push", _github("push.with-new-branch.payload.json"))
    assert (push.kind, push.ref, push.branch, push.sha) == ("push", "refs/heads/master", "master",
                                                            "6113728f27ae82c7b1a177c8d03f9e96e0adf246")
    assert push.paths == ["README.md"] and not push.deleted
    deleted = parse_event("github", "push", _github("push.payload.json"))
    assert deleted.deleted and deleted.tag == "simple-tag"
    for action in ("opened", "synchronize", "reopened", "closed"):
        pr = parse_event("github", "pull_request", _github(f"pull_request.{action}.payload.json"))
        assert pr.action == action and pr.base_ref == "master" and pr.head_ref == "changes"
        assert pr.sha == "ec26c3e57ca3a959ca5aad62de7213c562f8c821" and pr.ref_name == "changes"
    create = parse_event("github", "create", _github("create.payload.json"))
    assert create.kind == "create" and create.ref == "refs/tags/simple-tag"
    assert parse_event("github", "ping", _github("ping.payload.json")).kind == "ping"
    assert repository_name("github", _github("ping.with-organization.payload.json")) is None


def test_gitea_pull_request_action_names() -> None:
    data = json.loads(_github("pull_request.synchronize.payload.json"))
    data["action"] = "synchronized"  # Gitea's spelling
    event = parse_event("gitea", "pull_request", json.dumps(data).encode())
    assert event.provider == "gitea" and event.action == "synchronize"


GITLAB_PUSH = {"object_kind": "push", "ref": "refs/heads/main", "before": "0" * 40, "after": "c" * 40,
               "checkout_sha": "c" * 40, "project": {"id": 15, "path_with_namespace": "group/sub/app",
                                                     "default_branch": "main"},
               "commits": [{"id": "c" * 40, "added": ["a.py"], "modified": ["b.py"], "removed": []}]}
GITLAB_MR = {"object_kind": "merge_request", "project": {"id": 15, "path_with_namespace": "group/sub/app"},
             "object_attributes": {"iid": 7, "action": "update", "source_branch": "feat", "target_branch": "main",
                                   "last_commit": {"id": "d" * 40}}}


def test_gitlab_push_tag_and_merge_request() -> None:
    push = parse_event("gitlab", "Push Hook", json.dumps(GITLAB_PUSH).encode())
    assert (push.kind, push.repository, push.sha, push.project_id) == ("push", "group/sub/app", "c" * 40, 15)
    assert push.paths == ["a.py", "b.py"]
    tag = parse_event("gitlab", "Tag Push Hook", json.dumps({**GITLAB_PUSH, "object_kind": "tag_push",
                                                             "ref": "refs/tags/v1"}).encode())
    assert tag.kind == "push" and tag.tag == "v1"
    mr = parse_event("gitlab", "Merge Request Hook", json.dumps(GITLAB_MR).encode())
    assert (mr.kind, mr.action, mr.base_ref, mr.head_ref, mr.sha) == ("pull_request", "synchronize", "main", "feat",
                                                                      "d" * 40)


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"ref": "refs/heads/x"}'])
def test_malformed_payloads_are_usage_errors(body: bytes) -> None:
    with pytest.raises(UsageError):
        parse_event("github", "push", body)


def test_signatures_per_provider() -> None:
    body = b'{"a": 1}'
    good = sign("s", body)
    assert verify("github", "s", body, {"x-hub-signature-256": f"sha256={good}"})
    assert not verify("github", "s", body, {"x-hub-signature-256": good})  # the prefix is required
    assert not verify("github", "s", body + b" ", {"x-hub-signature-256": f"sha256={good}"})
    assert not verify("github", "other", body, {"x-hub-signature-256": f"sha256={good}"})
    assert not verify("github", "s", body, {})
    assert verify("gitea", "s", body, {"x-gitea-signature": good})
    assert not verify("gitea", "s", body, {"x-gitea-signature": ""})
    assert verify("gitlab", "s", body, {"x-gitlab-token": "s"})
    assert not verify("gitlab", "s", body, {"x-gitlab-token": "S"})
    assert not verify("gitlab", "s", body, {})
    assert not verify("bitbucket", "s", body, {"x-hub-signature-256": f"sha256={good}"})


def test_a_non_ascii_signature_is_wrong_not_an_error() -> None:
    """Headers arrive latin-1 decoded: a byte 0xE9 made hmac.compare_digest raise TypeError (HTTP 500)."""
    body = b'{"zen": "x"}'
    assert not verify("github", "s", body, {"x-hub-signature-256": "sha256=\xe9\xe9"})
    assert not verify("gitea", "s", body, {"x-gitea-signature": "\xe9"})
    assert not verify("gitlab", "s", body, {"x-gitlab-token": "\xe9"})
