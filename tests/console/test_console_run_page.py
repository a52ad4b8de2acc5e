"""The run page in Chromium against a real server: the DAG turns green as steps finish, a step's
log lines appear while it still runs, the cancel button cancels, a viewer has no cancel button."""

from __future__ import annotations

import time
from typing import Any

import pytest
from tests.console.conftest import make_token, revoke_token
from tests.server.conftest import Servers

pytestmark = pytest.mark.slow

#: Three jobs in a chain; `build` prints, sleeps 3 s, prints (its first line must show while it runs).
CHAIN = """\
name: chain
jobs:
  fetch:
    steps:
      - run: sleep 1; echo fetched
  build:
    needs: [fetch]
    steps:
      - run: echo build-first-line; sleep 3; echo build-last-line
  ship:
    needs: [build]
    steps:
      - run: sleep 0.5; echo shipped
"""
NODES = ("fetch/step-1", "build/step-1", "ship/step-1")
GREEN = "rgb(31, 157, 85)"  # --s-succeeded in console.css (light theme)

SLEEPER = """\
name: sleeper
jobs:
  wait:
    steps:
      - run: echo sleeping; sleep 60
"""


def _states(page: Any) -> dict[str, str]:
    return dict(page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('.dag-node')]"
        ".map(n => [n.dataset.node, n.dataset.state]))"))


def _node(page: Any, node: str) -> Any:
    return page.locator(f'.dag-node[data-node="{node}"]')


def test_dag_turns_green_as_steps_finish_and_logs_arrive_while_a_step_runs(sqlite_servers: Servers,
                                                                            console: Any) -> None:
    server = sqlite_servers()
    tab = console(server)
    run_id = server.submit(CHAIN)
    page = tab.open(f"/console/runs/{run_id}")
    page.wait_for_selector(".dag-node")
    assert set(_states(page)) == set(NODES)
    # The names are text in the DOM, as the states are.
    for node in NODES:
        assert node.split("/")[0] in (_node(page, node).locator(".dag-label").text_content() or "")

    # Follow `build`'s log; its first line must be on the page while `build` is still running.
    page.wait_for_function("() => document.querySelector('.dag-node[data-node=\"build/step-1\"]')"
                           ".dataset.state === 'running'")
    _node(page, "build/step-1").click()
    page.wait_for_selector(".log-title:has-text('build/step-1')")
    page.wait_for_selector(".log-line:has-text('build-first-line')", timeout=15_000)
    seen_while_running = _states(page)["build/step-1"]
    lines = page.locator(".log-line .log-text").all_inner_texts()
    assert seen_while_running == "running", f"the line came only after the step ended: {seen_while_running}"
    assert "build-last-line" not in lines
    assert _states(page)["ship/step-1"] in ("pending", "queued")
    assert server.run(run_id)["state"] == "running"
    tab.screenshot("run-page-running")

    # Watch the DAG: fetch is green before ship starts, then everything is green.
    snapshots: list[dict[str, str]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        snapshots.append(_states(page))
        if all(state == "succeeded" for state in snapshots[-1].values()):
            break
        page.wait_for_timeout(100)
    assert all(state == "succeeded" for state in snapshots[-1].values()), snapshots[-1]
    assert any(s["fetch/step-1"] == "succeeded" and s["ship/step-1"] != "succeeded" for s in snapshots)
    for node in NODES:
        assert _node(page, node).locator(".dag-state").text_content() == "succeeded"
        stroke = _node(page, node).locator(".dag-box").evaluate("el => getComputedStyle(el).stroke")
        assert stroke == GREEN, f"{node} is drawn {stroke}, not green"
    page.wait_for_selector(".log-line:has-text('build-last-line')")
    page.wait_for_selector('.run-state [data-state="succeeded"]')
    # The log of one node only holds that node's lines; search filters what is shown.
    assert not page.locator(".log-line:has-text('shipped')").count()
    page.fill(".log-search", "last")
    assert page.locator(".log-line:visible").all_inner_texts() == ["build-last-line"]
    # Back to every step's log.
    page.fill(".log-search", "")
    page.click("#all-logs")
    page.wait_for_selector(".log-title:has-text('all steps')")
    page.wait_for_selector(".log-line:has-text('shipped')")
    assert page.locator(".dag-node.selected").count() == 0
    _node(page, "build/step-1").click()
    page.wait_for_selector(".log-line:has-text('build-last-line')")
    # Export: the JSON download holds the node's lines as the REST API has them.
    with page.expect_download() as download:
        page.click("[data-download=json]")
    exported = download.value.path().read_text()
    assert "build-first-line" in exported and "shipped" not in exported
    with page.expect_download() as download:
        page.click("[data-download=text]")
    assert download.value.path().read_text() == "build-first-line\nbuild-last-line\n"
    # The document, as submitted, and its copy button.
    assert page.locator("#run-yaml").inner_text().strip() == CHAIN.strip()
    tab.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page.click("#copy-yaml")
    page.wait_for_selector("#copy-yaml:has-text('Copied')")
    assert page.evaluate("() => navigator.clipboard.readText()") == CHAIN
    # Succeeded: nothing to cancel or retry.
    assert page.locator("#cancel-run").is_hidden() and page.locator("#retry-run").is_hidden()
    tab.screenshot("run-page-succeeded")
    # Dark mode: the toggle flips the theme, the page follows, and it sticks across a reload.
    light = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    page.click("#theme")
    dark = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert page.evaluate("() => document.documentElement.dataset.theme") == "dark" and dark != light
    page.reload()
    page.wait_for_selector('.dag-node[data-state="succeeded"]')
    assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") == dark
    tab.screenshot("run-page-dark")


def test_cancel_button_cancels_a_running_run(sqlite_servers: Servers, console: Any) -> None:
    server = sqlite_servers()
    tab = console(server)
    run_id = server.submit(SLEEPER)
    requested: list[str] = []
    tab.page.on("request", lambda request: requested.append(request.url.split("?")[0]))
    page = tab.open(f"/console/runs/{run_id}")
    page.wait_for_selector('.dag-node[data-state="running"]')
    page.wait_for_selector(".log-line:has-text('sleeping')")
    # How the page follows the run: the run's event stream where the server has one (then, with
    # nothing happening, it reads nothing), else polling every second.
    events = f"{server.url}/api/v1/runs/{run_id}/events"
    streamed = "/api/v1/runs/{run_id}/events" in server.get("/openapi.json").json()["paths"]
    if streamed:
        deadline = time.monotonic() + 15
        while events not in requested and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert events in requested, "the server streams the run's events but the page did not follow them"
        page.wait_for_timeout(1000)  # the reads the replayed events caused
    requested.clear()
    clock = page.locator(".run-meta dt:text-is('duration') + dd")
    before = clock.inner_text()
    page.wait_for_timeout(3500)
    reads = requested.count(f"{server.url}/api/v1/runs/{run_id}")
    assert clock.inner_text() != before, "the running run's duration stood still"
    if streamed:
        assert reads == 0, f"the page polls ({reads} reads in 3.5 s) although the server streams events"
    else:
        assert reads >= 2, f"without events the page must poll the run: {reads} read(s) in 3.5 s"
    page.click("#cancel-run")
    page.wait_for_selector('.run-state [data-state="cancelled"]', timeout=30_000)
    assert server.run(run_id)["state"] == "cancelled"
    page.wait_for_selector('.dag-node[data-state="cancelled"]')
    assert page.locator("#cancel-run").is_hidden()
    page.wait_for_selector("#retry-run:visible")  # a cancelled run can be retried


def test_a_viewer_sees_no_cancel_button_and_a_maintainer_does(sqlite_servers: Servers, console: Any) -> None:
    viewer, maintainer = make_token(sqlite_servers.store, "viewer"), make_token(sqlite_servers.store, "maintainer")
    server = sqlite_servers(args=["--auth"])
    run_id = server.submit(SLEEPER, headers={"Authorization": f"Bearer {maintainer}"})
    try:
        as_viewer = console(server)
        page = as_viewer.open(f"/console/runs/{run_id}")
        page.wait_for_selector("#token")  # no token yet: the login form, not the run
        as_viewer.login(viewer)
        assert page.locator("#who").inner_text() == "console viewer · viewer"
        page.goto(f"{server.url}/console/runs/{run_id}")
        page.wait_for_selector('.dag-node[data-state="running"]')
        assert page.locator("#cancel-run").count() == 0
        assert page.locator("#retry-run").count() == 0
        assert page.locator('[data-nav="submit"]').is_hidden()
        assert viewer not in page.content()  # the token is never rendered
        as_viewer.screenshot("run-page-viewer")

        as_maintainer = console(server)
        as_maintainer.login(maintainer)
        other = as_maintainer.page
        other.goto(f"{server.url}/console/runs/{run_id}")
        other.wait_for_selector("#cancel-run:visible")
        assert maintainer not in other.content()
        # The viewer's token is revoked while its page is open: its next request sends it to sign-in.
        me = page.evaluate("() => fetch('/api/v1/whoami', {headers: {Authorization: "
                           "'Bearer ' + sessionStorage.getItem('worldtree.token')}}).then(r => r.json())")
        token_id = me["token_id"]
        revoke_token(sqlite_servers.store, token_id)
        page.locator(".dag-node").first.click()  # opens that step's log stream
        page.wait_for_selector("#token", timeout=20_000)
        assert page.evaluate("() => sessionStorage.getItem('worldtree.token')") is None
    finally:
        server.post(f"/api/v1/runs/{run_id}/cancel", headers={"Authorization": f"Bearer {maintainer}"})
