"""The console's agents page and "why is it pending" in Chromium, against a real server with gRPC
and one real `worldtree agent` process (SQLite; the REST endpoints themselves are tested on both
stores in tests/agents and tests/server): the page lists the agent with its labels and load, a
viewer gets no Drain button, a maintainer's Drain drains it; a run whose job selects a label no
agent has shows, on its run page, the agent with the term it fails (``gpu: missing``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.agents.conftest import Fleet
from tests.console.conftest import make_token
from tests.server.conftest import Server, Servers

pytestmark = pytest.mark.slow  # a server, an agent and a browser: several seconds

GPU = """\
name: needs-gpu
stages:
  - name: build
    jobs:
      - name: train
        labels: {gpu: "true"}
        steps:
          - {name: fit, command: "echo never"}
"""


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _agents(server: Server, token: str) -> list[dict[str, Any]]:
    response = server.get("/api/v1/agents", headers=_bearer(token))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_agents_page_drain_and_why_a_job_is_pending(sqlite_servers: Servers, tmp_path: Path, console: Any) -> None:
    viewer, maintainer = make_token(sqlite_servers.store, "viewer"), make_token(sqlite_servers.store, "maintainer")
    fleet = Fleet(sqlite_servers, tmp_path)
    try:
        server = fleet.start_server("--auth")
        fleet.agent("box-1", "os=linux,zone=a", capacity=2, token=maintainer)
        fleet.wait_for(lambda: any(a["online"] for a in _agents(server, viewer)), message="box-1 registers")
        agent_id = next(a["id"] for a in _agents(server, viewer) if a["name"] == "box-1")

        # A job selecting gpu=true waits: no agent has that label. Its run page says why.
        run_id = server.submit(GPU, headers=_bearer(maintainer))
        watching = console(server)
        watching.login(viewer)
        page = watching.open(f"/console/runs/{run_id}")
        line = page.wait_for_selector('#pending-panel li[data-agent="box-1"]')
        assert line.get_attribute("data-verdict") == "mismatch"
        assert page.locator('#pending-panel li[data-agent="box-1"] .explain-reason').inner_text() == "gpu: missing"
        assert "gpu=true" in page.locator("#pending-panel .pending-job").inner_text()
        assert page.locator('.dag-node[data-state="pending"]').count() == 1, "the waiting step is drawn pending"
        watching.screenshot("run-pending-explain")

        # The viewer sees the agent, its labels as chips and its load, no Drain.
        page.click('nav a[data-nav="agents"]')
        row = page.wait_for_selector('tr[data-agent="box-1"]')
        assert row.get_attribute("data-status") == "idle"
        chips = page.locator('tr[data-agent="box-1"] .chip').all_inner_texts()
        assert chips == ["os=linux", "zone=a"]
        assert page.locator('tr[data-agent="box-1"] td.jobs').inner_text() == "0/2"
        assert page.locator('tr[data-agent="box-1"] [data-metric="cpu"]').count() == 1
        assert page.locator("button.drain").count() == 0

        # A maintainer drains it from the page; the REST API and the viewer's live page agree.
        acting = console(server)
        acting.login(maintainer)
        mpage = acting.open("/console/agents")
        mpage.click('tr[data-agent="box-1"] button.drain')
        mpage.wait_for_selector('tr[data-agent="box-1"][data-status="draining"]')
        assert server.get(f"/api/v1/agents/{agent_id}", headers=_bearer(viewer)).json()["draining"] is True
        page.wait_for_selector('tr[data-agent="box-1"][data-status="draining"]')  # polled, no reload
        acting.screenshot("agents-drained")
    finally:
        for agent in fleet.agents:
            agent.stop()


def test_agents_page_says_when_the_server_has_no_agents_endpoint(sqlite_servers: Servers, console: Any) -> None:
    """Against a server without the endpoint (simulated by answering 404 in the browser), the page degrades."""
    server = sqlite_servers()
    tab = console(server)
    tab.page.route("**/api/v1/agents", lambda route: route.fulfill(
        status=404, content_type="application/json",
        body='{"error": {"code": "not_found", "message": "Not Found", "details": null}}'))
    page = tab.open("/console/agents")
    assert "not available on this server" in page.wait_for_selector(".unavailable").inner_text()
