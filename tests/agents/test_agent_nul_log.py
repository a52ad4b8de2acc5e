"""A step on an agent that prints a NUL byte: its log reaches the server (NUL shown as U+FFFD) and the
run ends. On PostgreSQL the batch was refused ("text fields cannot contain NUL"), the agent resent it
forever and the run stayed running."""

from __future__ import annotations

import pytest
from tests.agents.conftest import Fleet, logs

pytestmark = pytest.mark.slow  # a real server and agent

NUL_STEP = """name: nul
stages:
  - name: build
    jobs:
      - name: main
        label_selector: {match_labels: {pool: nul}}
        steps:
          - name: s
            command: printf 'before\\n'; printf 'a\\000b\\n'; printf 'after\\n'
"""


def test_a_nul_byte_in_an_agent_jobs_log_does_not_wedge_it(fleet: Fleet) -> None:
    server = fleet.start_server()
    agent = fleet.agent("nul", "pool=nul")
    fleet.registered(1)
    run_id = server.submit(NUL_STEP)
    run = server.wait(run_id, timeout=60)
    assert run["state"] == "succeeded", (run, server.log(), agent.log())
    assert [x["line"] for x in logs(server, run_id)] == ["before", "a\ufffdb", "after"]
