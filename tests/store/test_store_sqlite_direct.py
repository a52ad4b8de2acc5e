"""The direct SQLite path writes exactly what the SQLAlchemy store would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from worldtree.store import open_store, schema, sqlite_direct
from worldtree.store.sql import SqlRunStore


def test_head_matches() -> None:
    assert sqlite_direct.HEAD == schema.HEAD


def test_other_sqlite_urls_and_old_schemas_go_through_sqlalchemy(tmp_path: Path) -> None:
    with_options = open_store(f"sqlite:///{tmp_path}/s.db?timeout=5")
    assert isinstance(with_options, SqlRunStore)
    with_options.close()
    old = tmp_path / "old.db"
    conn = __import__("sqlite3").connect(old)
    conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
    conn.execute("INSERT INTO alembic_version VALUES ('0000')")
    conn.commit()
    conn.close()
    assert sqlite_direct.open_direct(f"sqlite:///{old}") is None


def test_a_run_through_the_direct_path_never_imports_sqlalchemy(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    open_store(url).close()
    code = f"""
import sys
from datetime import UTC, datetime
from worldtree.store import open_store
from worldtree.model.records import LogLine, NodeEvent
store = open_store({url!r})
run_id = store.create_run(name="n", source=None, workdir="/", graph_json="{{}}", options={{}})
lease = store.start_attempt(run_id, node_ids=["a"])
attempt = lease.attempt
writer = store.writer(run_id, attempt, token=lease.token)
now = datetime.now(UTC)
writer.node_event(NodeEvent(run_id, attempt, "a", "succeeded", now, now, now, 0))
writer.log(LogLine(run_id, attempt, "a", "stdout", "hello", now))
writer.close()
store.finish_attempt(run_id, attempt, "succeeded", token=lease.token)
print(run_id, "sqlalchemy" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[1] == "False"
    reread = open_store(url)
    record = reread.get_run(out[0])
    assert record is not None and record.state == "succeeded"
    assert [n.state for n in record.nodes] == ["succeeded"]
    assert [line.line for line in reread.logs(out[0])] == ["hello"]


def _schema(path: Path) -> list[tuple[str, str]]:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name").fetchall()
        version = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    finally:
        conn.close()
    return [*rows, ("version", str(version))]


def test_fresh_file_gets_exactly_the_schema_alembic_creates(tmp_path: Path) -> None:
    from worldtree.store.schema import ensure_schema, make_engine

    by_alembic = tmp_path / "alembic.db"
    engine = make_engine(f"sqlite:///{by_alembic}")
    ensure_schema(engine)
    engine.dispose()
    direct = open_store(f"sqlite:///{tmp_path}/direct.db")
    assert isinstance(direct, sqlite_direct.SqliteDirectStore)
    direct.close()
    assert _schema(tmp_path / "direct.db") == _schema(by_alembic)


def test_fresh_file_from_many_processes_at_once(tmp_path: Path) -> None:
    code = "from worldtree.store import open_store; import sys; open_store(sys.argv[1]).close()"
    url = f"sqlite:///{tmp_path}/race.db"
    procs = [subprocess.Popen([sys.executable, "-c", code, url]) for _ in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    store = open_store(url)
    run_id = store.create_run(name="n", source=None, workdir="/", graph_json="{}", options={})
    assert store.get_run(run_id) is not None
    store.close()
