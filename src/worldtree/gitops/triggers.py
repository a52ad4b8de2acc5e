"""``on:`` evaluated the way GitHub Actions does, so a workflow's filters mean the same here.

* ``push``: ``branches``/``branches-ignore``, ``tags``/``tags-ignore``, ``paths``/``paths-ignore``.
  With only branch filters, tag pushes do not run (and the reverse); with neither, both do.
* ``pull_request``: ``types`` (default ``opened``, ``synchronize``, ``reopened``), ``branches``
  (the *target* branch), ``paths``.
* ``create`` (a branch or tag created) runs only when ``on:`` names it.
* Patterns: ``*`` any characters but ``/``, ``**`` any characters, ``?``/``+`` zero-or-one /
  one-or-more of the previous character, ``[…]`` a class; a leading ``!`` negates. Patterns are
  read in order and the **last** one that matches decides (``[main, 'releases/**', '!releases/**-alpha']``).
* Paths: the run happens when at least one changed file is included (``paths``), or when not
  every changed file is ignored (``paths-ignore``). When the payload lists no files (a new
  branch, a huge push), path filters do not stop the run.
* No ``on:`` at all: pushes and pull requests run (what GitLab CI users expect of a pipeline file).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from worldtree.errors import UsageError
from worldtree.gitops.payloads import GitEvent

DEFAULT_PR_TYPES = ("opened", "synchronize", "reopened")


@dataclass(frozen=True)
class Decision:
    run: bool
    why: str


def evaluate(on: dict[str, Any] | None, event: GitEvent) -> Decision:
    """Whether ``event`` starts the pipeline whose ``on:`` (as a plain mapping) is ``on``, and why (not)."""
    if event.kind == "ping":
        return Decision(False, "ping: the webhook works")
    if event.kind == "push" and event.deleted:
        return Decision(False, f"{event.ref} was deleted")
    if on is None:
        if event.kind == "pull_request" and event.action not in DEFAULT_PR_TYPES:
            return Decision(False, f"pull_request {event.action} is not one of {', '.join(DEFAULT_PR_TYPES)}")
        if event.kind in ("push", "pull_request"):
            return Decision(True, "no `on:` in the pipeline: every push and pull request runs")
        return Decision(False, f"{event.kind} does not run a pipeline without `on: {event.kind}`")
    if event.kind not in on:
        return Decision(False, f"`on:` has no {event.kind}")
    spec = on.get(event.kind) or {}
    if not isinstance(spec, dict):
        raise UsageError(f"`on.{event.kind}` must be a mapping of filters (branches, tags, paths, types)")
    if event.kind == "push":
        return _push(spec, event)
    if event.kind == "pull_request":
        return _pull_request(spec, event)
    return Decision(True, f"`on:` has {event.kind}")


def _push(spec: dict[str, Any], event: GitEvent) -> Decision:
    branch_keys = [k for k in ("branches", "branches-ignore") if k in spec]
    tag_keys = [k for k in ("tags", "tags-ignore") if k in spec]
    for keys in (branch_keys, tag_keys):
        if len(keys) == 2:
            raise UsageError(f"`on.push` takes {keys[0]} or {keys[1]}, not both; use `!` patterns in {keys[0]}")
    if event.tag is not None:
        name, keys, what = event.tag, tag_keys, "tag"
        if branch_keys and not tag_keys:
            return Decision(False, "on.push filters branches only: tag pushes do not run")
    else:
        name, keys, what = (event.branch or event.ref), branch_keys, "branch"
        if tag_keys and not branch_keys:
            return Decision(False, "on.push filters tags only: branch pushes do not run")
    if keys and not _ref_allowed(spec, keys[0], name):
        return Decision(False, f"{what} {name} is not matched by on.push.{keys[0]}")
    return _paths(spec, event, "push")


def _pull_request(spec: dict[str, Any], event: GitEvent) -> Decision:
    types = _patterns(spec, "types") or list(DEFAULT_PR_TYPES)
    if event.action not in types:
        return Decision(False, f"pull_request {event.action} is not one of on.pull_request.types ({', '.join(types)})")
    keys = [k for k in ("branches", "branches-ignore") if k in spec]
    if len(keys) == 2:
        raise UsageError("`on.pull_request` takes branches or branches-ignore, not both")
    if keys and not _ref_allowed(spec, keys[0], event.base_ref):
        return Decision(False, f"target branch {event.base_ref} is not matched by on.pull_request.{keys[0]}")
    return _paths(spec, event, "pull_request")


def _ref_allowed(spec: dict[str, Any], key: str, name: str) -> bool:
    matched = matches(_patterns(spec, key), name)
    return not matched if key.endswith("-ignore") else matched


def _paths(spec: dict[str, Any], event: GitEvent, kind: str) -> Decision:
    if "paths" in spec and "paths-ignore" in spec:
        raise UsageError(f"`on.{kind}` takes paths or paths-ignore, not both; use `!` patterns in paths")
    if not event.paths or ("paths" not in spec and "paths-ignore" not in spec):
        return Decision(True, f"{kind} matches on.{kind}")
    if "paths" in spec:
        patterns = _patterns(spec, "paths")
        if any(matches(patterns, path) for path in event.paths):
            return Decision(True, f"a changed file matches on.{kind}.paths")
        return Decision(False, f"no changed file matches on.{kind}.paths")
    ignored = _patterns(spec, "paths-ignore")
    if all(matches(ignored, path) for path in event.paths):
        return Decision(False, f"every changed file matches on.{kind}.paths-ignore")
    return Decision(True, f"a changed file is outside on.{kind}.paths-ignore")


def _patterns(spec: dict[str, Any], key: str) -> list[str]:
    value = spec.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return [str(v) for v in value]
    raise UsageError(f"`{key}` must be a list of patterns")


def matches(patterns: list[str], name: str) -> bool:
    """GitHub's filter: the last pattern that matches ``name`` decides (a ``!`` one excludes)."""
    decided = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        if _compiled(pattern[1:] if negated else pattern).fullmatch(name):
            decided = not negated
    return decided


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char in "?+" and out:
            out.append(char)
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                out.append("[" + pattern[i + 1:end].replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    try:
        return re.compile("".join(out))
    except re.error:
        raise UsageError(f"filter pattern {pattern!r} is not valid") from None
