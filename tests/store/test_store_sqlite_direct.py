"""The direct SQLite path writes exactly what the SQLAlchemy store would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy.dialects import sqlite

from worldtree.store import open_store, schema, sqlite_direct
from worldtree.store.sql import SqlRunStore
from worldtree.store.tables import runs
from worldtree.store.writer import _statements


def test_statements_match_what_sqlalchemy_compiles() -> None:
    upsert, insert_logs = _statements(sqlite.dialect())
    assert upsert.sql == sqlite_direct.UPSERT_NODE
    assert insert_logs.sql == sqlite_direct.INSERT_LOGS
    assert str(runs.insert().compile(dialect=sqlite.dialect())) == sqlite_direct.INSERT_RUN
    assert sqlite_direct.HEAD == schema.HEAD


def test_new_file_is_migrated_by_sqlalchemy_then_written_directly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    first = open_store(url)
    assert isinstance(first, SqlRunStore)
    first.close()
    second = open_store(url)
    assert isinstance(second, sqlite_direct.SqliteDirectStore)
    second.close()


def test_a_run_through_the_direct_path_never_imports_sqlalchemy(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    open_store(url).close()
    code = f"""
import sys
from datetime import UTC, datetime
from worldtree.store import open_store
from worldtree.store.records import LogLine, NodeEvent
store = open_store({url!r})
run_id = store.create_run(name="n", source=None, workdir="/", graph_json="{{}}", options={{}})
attempt = store.start_attempt(run_id)
writer = store.writer(run_id, attempt)
now = datetime.now(UTC)
writer.node_event(NodeEvent(run_id, attempt, "a", "succeeded", now, now, now, 0))
writer.log(LogLine(run_id, attempt, "a", "stdout", "hello", now))
writer.close()
store.finish_attempt(run_id, attempt, "succeeded")
print(run_id, "sqlalchemy" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[1] == "False"
    reread = open_store(url)
    record = reread.get_run(out[0])
    assert record is not None and record.state == "succeeded"
    assert [n.state for n in record.nodes] == ["succeeded"]
    assert [line.line for line in reread.logs(out[0])] == ["hello"]
