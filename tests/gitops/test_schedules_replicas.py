"""Two real server replicas on one store: a fast cron's every tick fires exactly one run."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text
from tests.server.conftest import Servers

DOC = """\
name: every-second
on:
  schedule:
    - cron: "* * * * * *"
jobs:
  a:
    steps:
      - run: echo "tick $CI_SCHEDULE_TICK"
"""


@pytest.mark.slow
def test_two_replicas_fire_each_tick_once(servers: Servers) -> None:
    first = servers(executors=0)  # the runs need not run: what counts is how many are made
    second = servers(executors=0)
    response = first.post("/api/v1/schedules", json={"name": "fast", "document": DOC})
    assert response.status_code == 201, response.text
    [listed] = second.get("/api/v1/schedules").json()["items"]
    assert listed["name"] == "fast#1" and len(listed["next"]) == 3
    deadline = time.monotonic() + 30
    while first.get("/api/v1/runs").json()["total"] < 3:
        assert time.monotonic() < deadline, first.log() + second.log()
        time.sleep(0.2)
    first.stop()
    second.stop()
    engine = create_engine(servers.store)
    try:
        with engine.connect() as conn:
            ticks = conn.execute(text("SELECT tick_at, owner, run_id FROM schedule_ticks")).fetchall()
            runs = conn.execute(text("SELECT id FROM runs")).fetchall()
    finally:
        engine.dispose()
    assert len(runs) == len(ticks) >= 3  # one run per tick, never two
    assert {t.run_id for t in ticks} == {r.id for r in runs}
