"""JSON nested past Python's recursion limit is bad input (4xx), not a RecursionError (500): the
run and pipeline bodies, and a webhook body, which is parsed before its signature is checked."""

from __future__ import annotations

import httpx
import pytest
from tests.server.conftest import Servers

from worldtree.errors import UsageError
from worldtree.gitops.payloads import parse_event, repository_name

DEEP = ("[" * 100_000 + "]" * 100_000).encode()


def test_payloads_refuse_deep_json() -> None:
    assert repository_name("github", DEEP) is None
    with pytest.raises(UsageError):
        parse_event("github", "push", DEEP)


def test_deep_json_bodies_are_4xx(servers: Servers) -> None:
    server = servers(executors=0)
    json_type = {"content-type": "application/json"}
    for path in ("/api/v1/runs", "/api/v1/pipelines"):
        got = httpx.post(server.url + path, content=DEEP, headers=json_type, timeout=30)
        assert got.status_code == 400, (path, got.text)
        assert got.json()["error"]["code"] == "bad_request"
    hook = httpx.post(f"{server.url}/api/v1/webhooks/github", content=DEEP, timeout=30,
                      headers={**json_type, "x-github-event": "push", "x-github-delivery": "d1",
                               "x-hub-signature-256": "sha256=00"})
    assert hook.status_code == 404, hook.text  # no repository named: nothing to check a signature against
    assert "internal error" not in server.log()
