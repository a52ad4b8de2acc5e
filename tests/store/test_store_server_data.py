"""Server data rows (migration 0006) on every store kind: racing writers of one secret name."""

from __future__ import annotations

import threading

from worldtree.store import RunStore
from worldtree.store.server_data import PipelineRows, SecretRows, engine_of


def _race(rows: SecretRows, name: str, writers: int = 8) -> list[object]:
    barrier = threading.Barrier(writers)
    results: list[object] = []

    def write() -> None:
        barrier.wait()
        try:
            results.append(rows.put(name, "ciphertext"))
        except Exception as exc:  # what the test is about: none may escape
            results.append(exc)

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_writers_racing_on_a_new_secret_name_create_it_once(store: RunStore) -> None:
    rows = SecretRows(engine_of(store))
    for number in range(5):
        results = _race(rows, f"NAME_{number}")
        assert sorted(map(repr, results)) == ["False"] * 7 + ["True"], results
    assert [r.name for r in rows.rows()] == [f"NAME_{n}" for n in range(5)]


def test_a_pipeline_name_is_taken_once(store: RunStore) -> None:
    import pytest

    from worldtree.errors import ConflictError

    rows = PipelineRows(engine_of(store))
    rows.create("p", "name: p")
    with pytest.raises(ConflictError, match="exists"):
        rows.create("p", "name: other")
    assert rows.get("p") is not None and rows.get("p").document == "name: p"  # type: ignore[union-attr]
