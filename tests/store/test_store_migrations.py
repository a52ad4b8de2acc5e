from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from store_helpers import new_run

import worldtree.store
from worldtree.errors import StoreError
from worldtree.store import LogLine, open_store
from worldtree.store.schema import HEAD, alembic_config, current_revision, make_engine


def test_open_twice_keeps_data_and_schema(url: str) -> None:
    first = open_store(url)
    run_id = new_run(first)
    first.close()
    second = open_store(url)
    assert second.get_run(run_id) is not None
    second.close()
    engine = make_engine(url)
    assert current_revision(engine) == HEAD
    engine.dispose()


def test_head_constant_matches_the_migration_scripts(url: str) -> None:
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(alembic_config(url)).get_current_head() == HEAD


OPENER = """
import sys, time
from worldtree.store import open_store
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
store = open_store(sys.argv[1])
store.create_run(name="concurrent", source=None, workdir="/", graph_json="{}", options={})
store.close()
"""


def test_concurrent_first_open_from_several_processes(url: str) -> None:
    start = time.time() + 1.5  # all children are past their imports by then
    children = [subprocess.Popen([sys.executable, "-c", OPENER, url, str(start)], stderr=subprocess.PIPE,
                                 text=True) for _ in range(3)]
    errors = [child.communicate(timeout=60)[1] for child in children]
    assert [child.returncode for child in children] == [0, 0, 0], errors
    store = open_store(url)
    assert [r.name for r in store.list_runs()] == ["concurrent"] * 3
    store.close()


PROBE = """
import sys
import worldtree.store
assert "sqlalchemy" not in sys.modules, "importing worldtree.store must not import SQLAlchemy"
worldtree.store.open_store(sys.argv[1]).close()
print("alembic" in sys.modules)
"""


def test_startup_imports_are_lazy(kind: str, url: str) -> None:
    if kind == "sqlite-direct":
        pytest.skip("needs a fresh file; the direct path is covered by test_store_sqlite_direct")
    def alembic_imported() -> str:
        done = subprocess.run([sys.executable, "-c", PROBE, url], capture_output=True, text=True, check=True)
        return done.stdout.strip()

    # a fresh PostgreSQL database is migrated by Alembic; a fresh SQLite file gets the same schema
    # without it (tests/store/test_store_sqlite_direct.py compares them)
    assert alembic_imported() == ("True" if kind == "postgres" else "False")
    assert alembic_imported() == "False"  # one at head costs no Alembic import


def test_bad_urls_raise_store_error(kind: str, url: str, tmp_path: Path) -> None:
    if kind == "sqlite-direct":
        pytest.skip("the same URLs as the sqlite case")
    not_a_db = tmp_path / "garbage.db"
    not_a_db.write_bytes(b"this is not a database file" * 100)
    broken = {
        "sqlite": [f"sqlite:///{tmp_path}/missing-dir/x.db", "sqlite://", f"sqlite:///{not_a_db}"],
        "postgres": ["postgresql+psycopg://postgres@127.0.0.1:1/test",
                     url.rsplit("/", 1)[0] + "/wt_does_not_exist"],
    }[kind] + ["not a url", "mysql://user@host/db"]
    for bad in broken:
        with pytest.raises(StoreError) as caught:
            open_store(bad)
        assert "run store" in str(caught.value), bad


def test_default_url_from_environment_or_cwd(url: str, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(worldtree.store.STORE_ENV, raising=False)
    assert worldtree.store.default_store_url() == f"sqlite:///{tmp_path.resolve()}/.worldtree/worldtree.db"
    assert (tmp_path / ".worldtree").is_dir()
    monkeypatch.setenv(worldtree.store.STORE_ENV, url)
    store = open_store()
    assert store.url == url
    store.close()


def test_public_api() -> None:
    assert sorted(worldtree.store.__all__) == sorted(
        ["LEASE_SECONDS", "STORE_ENV", "AttemptLease", "LogLine", "NodeEvent", "NodeRecord", "RunRecord",
         "RunStore", "RunWriter",
         "default_store_url", "open_store"])
    for name in worldtree.store.__all__:
        assert hasattr(worldtree.store, name)


def test_schema_from_a_newer_worldtree_is_a_store_error(url: str) -> None:
    open_store(url).close()
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()
    with pytest.raises(StoreError, match="newer worldtree"):
        open_store(url)


def test_a_0001_store_with_runs_upgrades_and_still_reads(kind: str, url: str) -> None:
    if kind == "sqlite-direct":
        pytest.skip("the same file as the sqlite case")
    from alembic import command

    from worldtree.store.schema import write_transaction

    engine = make_engine(url)
    with engine.connect() as conn:  # a fresh database: the url fixture has not opened it
        conn.exec_driver_sql("DROP TABLE IF EXISTS logs")
        conn.exec_driver_sql("DROP TABLE IF EXISTS node_states")
        conn.exec_driver_sql("DROP TABLE IF EXISTS attempts")
        conn.exec_driver_sql("DROP TABLE IF EXISTS runs")
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        conn.commit()
    with write_transaction(engine) as conn:
        config = alembic_config(engine.url)
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        ts = "2026-11-20 10:00:00.000000" if kind == "sqlite" else "2026-11-20 10:00:00+00"
        conn.exec_driver_sql(
            "INSERT INTO runs (id, name, source, workdir, state, attempt, created_at, started_at, graph_json, "
            f"options_json) VALUES ('20261120-100000-00aaa', 'old', NULL, '/', 'running', 1, '{ts}', '{ts}', "
            "'{}', '{}')")
        conn.exec_driver_sql(
            "INSERT INTO attempts (run_id, number, state, started_at, pid, hostname, heartbeat_at) VALUES "
            f"('20261120-100000-00aaa', 1, 'running', '{ts}', 1, 'gone-host', '{ts}')")
        conn.exec_driver_sql(
            "INSERT INTO node_states (run_id, attempt, node, state, try_number) VALUES "
            "('20261120-100000-00aaa', 1, 'a', 'succeeded', 1)")
        for seq in (1, 2, 2):  # a kill -9 and a retry once made two writers reuse a seq
            conn.exec_driver_sql(
                "INSERT INTO logs (run_id, attempt, node, seq, ts, stream, line) VALUES "
                f"('20261120-100000-00aaa', 1, 'a', {seq}, '{ts}', 'stdout', 'line {seq}')")
    assert current_revision(engine) == "0001"
    engine.dispose()

    store = open_store(url)
    try:
        run = store.get_run("20261120-100000-00aaa")
        assert run is not None and run.state == "interrupted" and run.graph_version == 1
        assert [(n.node, n.state) for n in run.nodes] == [("a", "succeeded")]
        assert [x.seq for x in store.logs(run.run_id)] == [1, 2, 3]  # renumbered, now unique
        lease = store.start_attempt(run.run_id, node_ids=["a"], expect_attempt=1)
        assert (lease.attempt, lease.token) == (2, 2)  # fence continues from the old attempts
        w = store.writer(run.run_id, 2, token=lease.token)
        w.log(LogLine(run.run_id, 2, "a", "stdout", "after upgrade", datetime.now(UTC)))
        w.close()
        assert [x.seq for x in store.logs(run.run_id)][-1] == 4
    finally:
        store.close()
