"""The console's other pages in Chromium against a real server: the submit form shows a bad
document's errors at their line; the runs list updates live and filters, a failed run is retried
(on PostgreSQL; every other console test runs on SQLite); pipelines and queue pages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.server.conftest import Servers, pipeline

pytestmark = pytest.mark.slow

#: Line 7 holds the error (a step whose `command` is a mapping); the loader locates it there.
BAD = """\
name: bad
stages:
  - name: build
    jobs:
      - name: main
        steps:
          - name: a
            command: {not: a string}
"""


def test_submit_with_a_bad_document_shows_the_error_at_its_line(sqlite_servers: Servers, console: Any) -> None:
    server = sqlite_servers()
    tab = console(server)
    page = tab.open("/console/submit")
    page.fill("#document", BAD)
    page.click("#submit-run")
    page.wait_for_selector(".diagnostic")
    located = page.locator(".diagnostic").evaluate_all("items => items.map(i => Number(i.dataset.line))")
    marked = page.locator(".gutter .ln.error").evaluate_all("items => items.map(i => Number(i.dataset.line))")
    assert located and set(marked) == set(located), (located, marked)
    line = located[0]
    assert BAD.splitlines()[line - 1].strip().startswith("command:"), f"the error is shown at line {line}"
    # The editor selects that line, so the cursor is where the fix goes.
    selected = page.evaluate("() => { const e = document.getElementById('document');"
                             " return e.value.slice(e.selectionStart, e.selectionEnd); }")
    assert selected == BAD.splitlines()[line - 1]
    assert "command" in page.locator(".diagnostic").first.inner_text()
    # Nothing was stored or queued.
    assert server.get("/api/v1/runs").json()["total"] == 0
    # Editing clears the marks; a good document goes to its run page. Markup in names and output
    # is shown as text (a dialog would fail the test), terminal sequences are stripped.
    printer = r"printf '<img src=x onerror=alert(1)>\n\033[31mred\033[0m \033]0;title\007done\n'"
    page.fill("#document", pipeline(("a", printer), name="<b>fixed</b>"))
    assert page.locator(".gutter .ln.error").count() == 0
    page.click("#submit-run")
    page.wait_for_url("**/console/runs/*")
    page.wait_for_selector('.run-state [data-state="succeeded"]')
    assert page.locator("#run-pipeline").inner_text() == "<b>fixed</b>"
    page.wait_for_selector(".log-line:has-text('done')")
    assert page.locator(".log-text").all_text_contents() == ["<img src=x onerror=alert(1)>", "red done"]
    tab.screenshot("submit-then-run")


def _final_attempt(server: Any, run_id: str) -> int:
    return int(server.wait(run_id)["attempt"])


def _console_pass(servers: Servers, console: Any) -> None:
    """The runs list sees a run appear and end without a reload; filters narrow it; its page draws."""
    server = servers()
    tab = console(server)
    page = tab.open("/console")
    page.wait_for_selector("table.runs")
    assert page.locator("tr[data-run]").count() == 0
    first = server.submit(pipeline(("a", "echo alpha-line"), name="alpha"))
    page.wait_for_selector(f'tr[data-run="{first}"]')  # live: no reload
    page.wait_for_selector(f'tr[data-run="{first}"][data-state="succeeded"]', timeout=30_000)
    second = server.submit(pipeline(("b", "exit 3"), name="beta"))
    page.wait_for_selector(f'tr[data-run="{second}"][data-state="failed"]', timeout=30_000)
    # Filters: by state, then by search text (name), both kept in the address.
    page.select_option("select[name=state]", "failed")
    page.wait_for_url("**/console?state=failed")
    page.wait_for_function("() => document.querySelectorAll('tr[data-run]').length === 1")
    assert page.locator("tr[data-run]").get_attribute("data-run") == second
    page.goto(f"{server.url}/console?q=alph")
    page.wait_for_function("() => document.querySelectorAll('tr[data-run]').length === 1")
    assert page.locator("tr[data-run]").get_attribute("data-run") == first
    # The failed run's page: red node, a retry button, the log line.
    page.click(f'tr[data-run="{first}"] a')
    page.wait_for_url(f"**/console/runs/{first}")
    page.wait_for_selector('.dag-node[data-state="succeeded"]')
    page.wait_for_selector(".log-line:has-text('alpha-line')")
    page.goto(f"{server.url}/console/runs/{second}")
    page.wait_for_selector('.dag-node[data-state="failed"]')
    page.wait_for_selector('.dag-node[data-state="failed"] .dag-state:text-is("failed \N{MIDDLE DOT} exit 3")')
    assert page.locator("#cancel-run").is_hidden()
    # Retry: a new attempt of the same run, followed on the same page until it ends.
    page.click("#retry-run:visible")
    page.wait_for_selector(".run-message:has-text('Retry queued')")
    page.wait_for_selector(".run-meta dd:text-is('2')", timeout=30_000)
    page.wait_for_selector('.run-state [data-state="failed"]', timeout=30_000)
    assert _final_attempt(server, second) == 2
    # Queue page: the counts come from the server.
    page.goto(f"{server.url}/console/queue")
    page.wait_for_selector('[data-stat="failed"] .stat-value')
    assert page.locator('[data-stat="failed"] .stat-value').inner_text() == "1"


@pytest.mark.postgres
def test_runs_list_live_and_filters_on_postgresql(pg_servers: Servers, console: Any) -> None:
    _console_pass(pg_servers, console)


def test_pipelines_page_triggers_a_stored_pipeline_or_says_it_is_not_available(sqlite_servers: Servers,
                                                                               console: Any) -> None:
    server = sqlite_servers()
    tab = console(server)
    paths = server.get("/openapi.json").json()["paths"]
    page = tab.open("/console/pipelines")
    if "/api/v1/pipelines" not in paths:
        page.wait_for_selector(".unavailable:has-text('not available on this server')")
        return
    made = server.post("/api/v1/pipelines", json={"name": "nightly", "document": pipeline(("a", "echo nightly"))})
    assert made.status_code == 201, made.text
    page.reload()
    page.click('tr[data-pipeline="nightly"] button:has-text("Trigger")')
    page.wait_for_url("**/console/runs/*")
    page.wait_for_selector('.run-state [data-state="succeeded"]', timeout=30_000)
    page.wait_for_selector(".log-line:has-text('nightly')")


def test_queue_page_shows_waiting_runs_and_cancels_one(sqlite_servers: Servers, console: Any) -> None:
    server = sqlite_servers(executors=1)
    tab = console(server)
    busy = server.submit(pipeline(("a", "sleep 60"), name="busy"))
    waiting = server.submit(pipeline(("a", "echo never"), name="waiting"))
    page = tab.open("/console/queue")
    page.wait_for_selector(f'tr[data-run="{busy}"][data-state="running"]', timeout=30_000)
    page.wait_for_selector(f'tr[data-run="{waiting}"][data-state="queued"]')
    assert page.locator('[data-stat="pending"] .stat-value').inner_text() == "1"
    # A queued run's cancel is recorded at once and takes effect when an executor picks it up.
    page.click(f'tr[data-run="{waiting}"] button:has-text("Cancel")')
    server.wait(waiting, until=lambda run: bool(run["cancel_reason"]), timeout=30)
    page.click(f'tr[data-run="{busy}"] button:has-text("Cancel")')
    assert server.wait(busy, timeout=30)["state"] == "cancelled"
    assert server.wait(waiting, timeout=30)["state"] == "cancelled"
    page.wait_for_selector(".runs td:has-text('Nothing queued or running.')")


def test_log_downloads_read_every_page_of_a_long_log(sqlite_servers: Servers, console: Any) -> None:
    server = sqlite_servers()
    tab = console(server)
    run_id = server.submit(pipeline(("many", "seq 1 10007"), ("after", "echo after"), name="long"))
    assert server.wait(run_id)["state"] == "succeeded"
    page = tab.open(f"/console/runs/{run_id}")
    page.wait_for_selector('.dag-node[data-state="succeeded"]')
    # A job of two steps is a box titled by its stage and job around its steps.
    title = "build \N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK} main"
    job = page.locator(f'.dag-job[data-job="{title}"]')
    assert job.locator(".dag-job-label").text_content() == title
    assert page.locator(".dag-label").all_text_contents() == ["many", "after"]
    with page.expect_download() as text:
        page.click("[data-download=text]")
    assert text.value.path().read_text() == "".join(f"{n}\n" for n in range(1, 10008)) + "after\n"
    with page.expect_download() as as_json:
        page.click("[data-download=json]")
    items = json.loads(as_json.value.path().read_text())
    assert [item["line"] for item in items] == [str(n) for n in range(1, 10008)] + ["after"]
