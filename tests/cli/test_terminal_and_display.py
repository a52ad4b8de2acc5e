"""What reaches the user's terminal: colours but no other escape sequences; honest run and node
states; attempts told apart in ``logs``; usage errors instead of internal errors."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console
from tests.cli.conftest import Cli

from worldtree.cli import run_view
from worldtree.cli.live import LiveConsole
from worldtree.cli.terminal import sanitize
from worldtree.model.graph import ExecutionGraph, Node
from worldtree.model.records import LogLine, NodeRecord, RunRecord

HOSTILE = {
    "osc52 clipboard": "\x1b]52;c;cm0gLXJmIH4K\x07",
    "osc8 link": "\x1b]8;;https://evil.example\x1b\\",
    "window title": "\x1b]0;pwned\x07",
    "dcs": "\x1bP+q544e\x1b\\",
    "screen clear": "\x1b[2J\x1b[H",
    "reset": "\x1bc",
    "8-bit csi": "\x9b2J",
    "cursor up": "\x1b[3A",
    "unterminated osc": "\x1b]52;c;AAAA",
}
SGR = "\x1b[1;31m"


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_sanitize_keeps_colours_and_strips_the_rest(name: str) -> None:
    text = f"{SGR}before{HOSTILE[name]}after\x1b[0m"
    cleaned = sanitize(text)
    expected = f"{SGR}beforeafter\x1b[0m" if name != "unterminated osc" else f"{SGR}before\x1b[0m"
    assert cleaned == expected
    assert "\x07" not in cleaned and "\x1b]" not in cleaned and "\x1bP" not in cleaned


def test_plain_text_is_untouched() -> None:
    assert sanitize("tab\there, ünïcode, 100%") == "tab\there, ünïcode, 100%"


_OUTPUT = "printf 'col\\033[32mgreen\\033[0m\\033]52;c;cm0gLXJmIH4K\\007\\033]0;pwned\\007\\033[2Jend\\n'"


def test_run_and_logs_strip_escapes_and_logs_raw_keeps_them(sqlite_cli: Cli) -> None:
    sqlite_cli.write("p.yaml", f"jobs:\n  j:\n    steps:\n      - run: |\n          {_OUTPUT}\n")
    run = sqlite_cli("run", "p.yaml")
    assert run.returncode == 0, run.stderr
    assert "[j/step-1] col\x1b[32mgreen\x1b[0mend" in run.stdout
    run_id = sqlite_cli("runs", "--json").stdout
    run_id = json.loads(run_id)[0]["run_id"]
    logs = sqlite_cli("logs", run_id).stdout
    raw = sqlite_cli("logs", run_id, "--raw").stdout
    for text in (run.stdout, logs):
        assert "\x1b]" not in text and "\x07" not in text and "\x1b[2J" not in text
    assert "\x1b[32mgreen" in logs
    assert "\x1b]52;c;cm0gLXJmIH4K\x07" in raw and "\x1b[2J" in raw


def test_live_view_strips_escapes_but_keeps_colours() -> None:
    graph = ExecutionGraph(name="p", nodes=[Node(id="j/s", path="j/s", name="s", job="j", command="x")])
    out = io.StringIO()
    live = LiveConsole(graph, console=Console(file=out, force_terminal=True, color_system="standard", width=200))
    live.on_log(LogLine("r", 1, "j/s", "stdout", "a\x1b[32mgreen\x1b[0m\x1b]52;c;QUFB\x07\x1b]0;t\x07b", _now()))
    shown = out.getvalue()
    assert re.search(r"\x1b\[[0-9;]*32mgreen", shown), repr(shown)
    assert "\x1b]" not in shown and "\x07" not in shown


def _now() -> datetime:
    return datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _run(state: str, attempt: int = 1, **kw: object) -> RunRecord:
    return RunRecord(run_id="r1", name="p", source=None, state=state, attempt=attempt, workdir="/w",
                     created_at=_now(), started_at=_now(), **kw)  # type: ignore[arg-type]


def test_an_interrupted_run_and_its_running_node_are_shown_interrupted() -> None:
    run = _run("interrupted")
    node = NodeRecord(node="j/s", state="running", attempt=1, started_at=_now())
    assert run_view.duration(run.started_at, run.finished_at, interrupted=True) == "interrupted"
    assert run_view.node_state(run, node) == "interrupted"
    line = run_view.node_line(run, node, None)
    assert "running" not in line and line.split()[:2] == ["interrupted", "interrupted"]
    live = _run("running")
    assert run_view.node_state(live, node) == "running"
    assert run_view.duration(_now(), None) == "running"
    assert run_view.duration(_now(), _now() + timedelta(seconds=2)) == "2.00s"
    # the runner's last heartbeat bounds how long an interrupted run ran
    seen = _run("interrupted", last_seen=_now() + timedelta(seconds=3))
    assert run_view.duration(seen.started_at, None, interrupted=True, last_seen=seen.last_seen) == "3.00s?"
    assert run_view.node_line(seen, node, None).split()[:2] == ["interrupted", "3.00s?"]


def test_a_node_reused_twice_shows_the_attempt_that_ran_it() -> None:
    history = {
        1: [NodeRecord(node="a", state="succeeded", attempt=1), NodeRecord(node="b", state="failed", attempt=1)],
        2: [NodeRecord(node="a", state="reused", attempt=2, reason="attempt 1"),
            NodeRecord(node="b", state="succeeded", attempt=2)],
    }
    a3 = NodeRecord(node="a", state="reused", attempt=3, reason="attempt 2")
    b3 = NodeRecord(node="b", state="reused", attempt=3, reason="attempt 2")
    assert run_view.reused_from(a3, history.__getitem__) == 1
    assert run_view.reused_from(b3, history.__getitem__) == 2
    assert "[from attempt 1]" in run_view.node_line(_run("succeeded", 3), a3, 1)


def test_logs_mark_where_each_attempt_starts() -> None:
    printer = run_view.LogPrinter(_run("succeeded", 2), None, raw=False)
    lines = [LogLine("r1", a, "j/s", "stdout", text, _now()) for a, text in ((1, "one"), (1, "two"), (2, "three"))]
    assert [t for line in lines for t in printer.lines(line)] == [
        "── attempt 1 ──", "[j/s] one", "[j/s] two", "── attempt 2 ──", "[j/s] three"]
    single = run_view.LogPrinter(_run("succeeded", 1), "j/s", raw=False)
    assert single.lines(lines[0]) == ["one"]


def test_workdir_naming_a_file_is_a_usage_error(sqlite_cli: Cli) -> None:
    sqlite_cli.write("p.yaml", "jobs:\n  j: {steps: [{run: 'true'}]}\n")
    sqlite_cli.write("afile", "x")
    proc = sqlite_cli("run", "p.yaml", "--workdir", "afile")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: --workdir afile: exists and is not a directory")
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
    assert "no runs yet" in sqlite_cli("runs").stdout  # nothing started, nothing left behind
