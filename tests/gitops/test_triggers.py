"""``on:`` filter tables: GitHub Actions' semantics for branches, tags, paths and pull_request types."""

from __future__ import annotations

from typing import Any

import pytest

from worldtree.errors import UsageError
from worldtree.gitops.generator import raw_on
from worldtree.gitops.payloads import GitEvent
from worldtree.gitops.triggers import evaluate, matches


def push(ref: str, paths: list[str] | None = None, deleted: bool = False) -> GitEvent:
    return GitEvent("github", "push", "o/r", ref=ref, sha="a" * 40, paths=paths, deleted=deleted)


def pr(action: str, base: str = "main") -> GitEvent:
    return GitEvent("github", "pull_request", "o/r", ref="refs/pull/1/head", sha="b" * 40, action=action,
                    base_ref=base, head_ref="feature", paths=None)


PATTERNS = [
    (["main"], "main", True),
    (["main"], "mainline", False),
    (["releases/*"], "releases/v1", True),
    (["releases/*"], "releases/v1/hotfix", False),  # * stops at /
    (["releases/**"], "releases/v1/hotfix", True),
    (["releases/**", "!releases/**-alpha"], "releases/v2-alpha", False),  # a later ! excludes
    (["!releases/**-alpha", "releases/**"], "releases/v2-alpha", True),  # order matters: last match wins
    (["v[12].*"], "v1.3", True),
    (["v[12].*"], "v3.0", False),
    (["feature/ab+c"], "feature/abbbc", True),
    (["feature/ab?c"], "feature/ac", True),
    (["**.py"], "src/deep/x.py", True),
    (["*.py"], "src/x.py", False),
    (["**/*.md"], "README.md", True),  # **/ matches zero directories too
    (["**/*.md"], "docs/a/b.md", True),
    (["docs/**"], "src/docs/x", False),
    ([], "anything", False),
]


@pytest.mark.parametrize(("patterns", "name", "expected"), PATTERNS)
def test_pattern_table(patterns: list[str], name: str, expected: bool) -> None:
    assert matches(patterns, name) is expected


ON: list[tuple[Any, GitEvent, bool]] = [
    # no `on:`: pushes and the default pull request types run
    (None, push("refs/heads/x"), True),
    (None, pr("opened"), True),
    (None, pr("closed"), False),
    # branches / tags split (GitHub: a filter on one kind keeps the other kind from running)
    ({"push": {"branches": ["main"]}}, push("refs/heads/main"), True),
    ({"push": {"branches": ["main"]}}, push("refs/heads/dev"), False),
    ({"push": {"branches": ["main"]}}, push("refs/tags/v1"), False),
    ({"push": {"tags": ["v*"]}}, push("refs/tags/v1.2"), True),
    ({"push": {"tags": ["v*"]}}, push("refs/tags/x1"), False),
    ({"push": {"tags": ["v*"]}}, push("refs/heads/main"), False),
    ({"push": {"branches": ["main"], "tags": ["v*"]}}, push("refs/tags/v9"), True),
    ({"push": {}}, push("refs/tags/anything"), True),
    ({"push": {"branches-ignore": ["wip/**"]}}, push("refs/heads/wip/a/b"), False),
    ({"push": {"branches-ignore": ["wip/**"]}}, push("refs/heads/main"), True),
    ({"push": {"tags-ignore": ["*-rc*"]}}, push("refs/tags/v1-rc1"), False),
    # paths
    ({"push": {"paths": ["src/**"]}}, push("refs/heads/main", ["README.md", "src/a.py"]), True),
    ({"push": {"paths": ["src/**"]}}, push("refs/heads/main", ["README.md"]), False),
    ({"push": {"paths": ["src/**", "!src/**.md"]}}, push("refs/heads/main", ["src/x.md"]), False),
    ({"push": {"paths-ignore": ["docs/**"]}}, push("refs/heads/main", ["docs/a.md"]), False),
    ({"push": {"paths-ignore": ["docs/**"]}}, push("refs/heads/main", ["docs/a.md", "x.c"]), True),
    ({"push": {"paths": ["src/**"]}}, push("refs/heads/main", None), True),  # payload lists no files
    ({"push": {"branches": ["main"], "paths": ["src/**"]}}, push("refs/heads/dev", ["src/a"]), False),
    # a deleted branch never runs
    ({"push": {}}, push("refs/heads/main", deleted=True), False),
    # pull_request: types (default opened/synchronize/reopened) and the target branch
    ({"pull_request": {}}, pr("synchronize"), True),
    ({"pull_request": {}}, pr("labeled"), False),
    ({"pull_request": {"types": ["labeled"]}}, pr("labeled"), True),
    ({"pull_request": {"types": ["labeled"]}}, pr("opened"), False),
    ({"pull_request": {"branches": ["main"]}}, pr("opened", base="main"), True),
    ({"pull_request": {"branches": ["main"]}}, pr("opened", base="release"), False),
    ({"pull_request": {"branches-ignore": ["main"]}}, pr("opened", base="main"), False),
    # the event must be named
    ({"push": {}}, pr("opened"), False),
    ({"pull_request": {}}, push("refs/heads/main"), False),
    ({"schedule": [{"cron": "0 * * * *"}]}, push("refs/heads/main"), False),
    ({"create": {}}, GitEvent("github", "create", "o/r", ref="refs/tags/v1"), True),
    (None, GitEvent("github", "create", "o/r", ref="refs/tags/v1"), False),
    ({"push": {}}, GitEvent("github", "ping", "o/r"), False),
]


@pytest.mark.parametrize(("on", "event", "expected"), ON)
def test_on_table(on: Any, event: GitEvent, expected: bool) -> None:
    decision = evaluate(on, event)
    assert decision.run is expected, decision.why
    assert decision.why


@pytest.mark.parametrize("on", [{"push": {"branches": ["a"], "branches-ignore": ["b"]}},
                                {"push": {"paths": ["a"], "paths-ignore": ["b"]}},
                                {"push": ["main"]}, {"push": {"branches": {"a": 1}}}])
def test_contradictory_filters_are_usage_errors(on: Any) -> None:
    with pytest.raises(UsageError):
        evaluate(on, push("refs/heads/a", ["x"]))


@pytest.mark.parametrize(("text", "expected"), [
    ("on: push\njobs: {a: {steps: [{run: x}]}}\n", {"push": {}}),
    ("on: [push, pull_request]\njobs: {a: {steps: [{run: x}]}}\n", {"push": {}, "pull_request": {}}),
    ("on:\n  push:\n  pull_request:\n    types: [opened]\njobs: {a: {steps: [{run: x}]}}\n",
     {"push": {}, "pull_request": {"types": ["opened"]}}),
    ("jobs: {a: {steps: [{run: x}]}}\n", None),
])
def test_raw_on_reads_the_shorthands(text: str, expected: Any) -> None:
    assert raw_on(text, "ci.yaml") == expected
