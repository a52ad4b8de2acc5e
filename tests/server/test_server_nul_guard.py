"""A NUL byte in an id or a filter is refused as such, not passed to the store (PostgreSQL: was 503)."""

from __future__ import annotations

import httpx
from tests.server.conftest import Servers, pipeline

IDS_WITH_NUL = ["/api/v1/runs/a%00b", "/api/v1/agents/a%00b", "/api/v1/pipelines/a%00b",
                "/api/v1/artifacts/a%00b", "/api/v1/jobs/a%00b/explain", "/api/v1/runs/a%00b/graph"]


def test_a_nul_in_an_id_is_not_found_and_in_a_filter_invalid(servers: Servers) -> None:
    server = servers(executors=0)
    for path in IDS_WITH_NUL:
        got = httpx.get(server.url + path, timeout=30)
        assert got.status_code == 404, (path, got.text)
        assert got.json()["error"]["code"] == "not_found"
    posted = httpx.post(f"{server.url}/api/v1/agents/a%00b/drain", timeout=30)
    assert posted.status_code == 404, posted.text
    filtered = httpx.get(f"{server.url}/api/v1/jobs", params={"run": "a\x00b"}, timeout=30)
    assert filtered.status_code == 422, filtered.text
    assert filtered.json()["error"]["code"] == "invalid_request"
    assert httpx.get(f"{server.url}/api/v1/jobs", timeout=30).status_code == 200
    assert "store error" not in server.log()


def test_a_body_value_the_database_refuses_is_400_not_503(servers: Servers) -> None:
    """A NUL or an over-long name in a body reached PostgreSQL, whose refusal became 503 "retry later"."""
    server = servers(executors=0)
    repo = {"name": "o/r", "provider": "github", "clone_url": "https://git.invalid/o/r\x00.git", "webhook_secret": "s"}
    long_name = {**repo, "name": "o/" + "r" * 600, "clone_url": "https://git.invalid/o/r.git"}
    for body in (repo, long_name):
        got = httpx.post(f"{server.url}/api/v1/repos", json=body, timeout=30)
        if server.store.startswith("sqlite"):
            assert got.status_code in (201, 400), got.text  # SQLite keeps any text
        else:
            assert got.status_code == 400, got.text
            assert got.json()["error"]["code"] == "bad_request"
            assert "postgres@" not in got.text and "INSERT" not in got.text  # neither the URL nor the statement
    token = httpx.post(f"{server.url}/api/v1/tokens", json={"name": "t\x00", "role": "viewer"}, timeout=30)
    assert token.status_code < 500, token.text


def test_a_log_offset_past_32_bits_is_an_empty_page(servers: Servers) -> None:
    """Found by schemathesis on PostgreSQL: ``logs.seq`` is a 32-bit INTEGER, a larger offset was a 503."""
    server = servers(executors=1)
    run_id = server.submit(pipeline(("a", "echo a")))
    server.wait(run_id)
    job_id = server.get(f"/api/v1/jobs?run={run_id}").json()["items"][0]["id"]
    for path in (f"/api/v1/runs/{run_id}/logs", f"/api/v1/jobs/{job_id}/logs"):
        for offset in (2**31 - 1, 20316835224, 2**62):
            got = server.get(path, params={"offset": offset})
            assert got.status_code == 200, (path, offset, got.text)
            assert got.json()["items"] == []
    assert server.get(f"/api/v1/runs/{run_id}/logs", params={"offset": 0}).json()["items"]
