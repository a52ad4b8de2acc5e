"""Agent input the store cannot hold is a UsageError (gRPC INVALID_ARGUMENT: the agent stops and says
why), not a store error (UNAVAILABLE: the agent retried forever); heartbeat labels are checked like
Register's and UpdateLabels'."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from worldtree.app import agents
from worldtree.errors import UsageError
from worldtree.store import open_store
from worldtree.store.api import RunStore
from worldtree.testing.stores import pg_unavailable_reason, store_url


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    if request.param == "postgres" and (reason := pg_unavailable_reason()):
        pytest.skip(f"!!! PostgreSQL tests skipped: {reason}")
    with store_url(request.param, tmp_path) as url:
        opened = open_store(url)
        try:
            yield opened
        finally:
            opened.close()


def _register(store: RunStore, **kw: object) -> dict[str, object]:
    args: dict[str, object] = {"protocol_version": agents.PROTOCOL_VERSION, "agent_id": None, "name": "a1",
                               "labels": {"os": "linux"}, "capacity": 1, "host": {}}
    args.update(kw)
    return agents.register(store, **args)  # type: ignore[arg-type]


def test_register_refuses_a_name_or_id_the_store_cannot_hold(store: RunStore) -> None:
    for bad in ({"name": "x" * 201}, {"name": "a\x00b"}, {"agent_id": "q\x00"}, {"agent_id": "agent-" + "0" * 60}):
        with pytest.raises(UsageError):
            _register(store, **bad)
    assert agents.list_agents(store) == []
    assert _register(store, name="x" * 200)["agent_id"]


def test_heartbeat_labels_are_checked(store: RunStore) -> None:
    agent_id = str(_register(store)["agent_id"])
    with pytest.raises(UsageError):
        agents.heartbeat(store, agent_id, labels={"a b": "c"})
    assert agents.get_agent(store, agent_id)["labels"] == {"os": "linux"}
    assert agents.heartbeat(store, agent_id, labels={"gpu": "true"}) == []
    assert agents.get_agent(store, agent_id)["labels"] == {"os": "linux", "gpu": "true"}


def test_a_nul_in_an_agent_id_is_bad_input_not_a_store_outage(store: RunStore) -> None:
    """PostgreSQL refuses NUL in text: that was a StoreError (gRPC UNAVAILABLE, "try again")."""
    with pytest.raises((UsageError, LookupError)):
        agents.update_labels(store, "agent-\x00", {"a": "b"}, merge=True)
    with pytest.raises((UsageError, LookupError)):
        agents.get_agent(store, "agent-\x00")
    try:
        assert agents.heartbeat(store, "agent-\x00") is None  # SQLite: an unknown agent
    except UsageError:
        pass  # PostgreSQL: the id cannot even be looked up
