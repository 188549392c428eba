"""sqlite3 against the real library: one span per statement, the connection stays a real one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from opentelemetry.trace import StatusCode

from tests.instrumentation.conftest import attributes, instrumented


def test_each_entry_point_is_one_span_and_nothing_leaks() -> None:
    with instrumented("sqlite3") as rec:
        with rec.tracer.start_as_current_span("request") as parent:
            conn = sqlite3.connect(":memory:")
            conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT UNIQUE)")
            conn.executemany("INSERT INTO users (name) VALUES (?)", [("alice-secret",), ("bob-secret",)])
            cur = conn.cursor()
            cur.execute("SELECT * FROM users WHERE name = 'carol-secret' OR id IN (1, 2, 3)")
            assert cur.fetchall() == [(1, "alice-secret"), (2, "bob-secret")]
            cur.executescript("UPDATE users SET name = 'dave-secret' WHERE id = 42; DELETE FROM users;")
            conn.close()
        spans = rec.spans()
    assert [s.name for s in spans] == [
        "CREATE TABLE users",
        "BATCH INSERT users",
        "SELECT users",
        "UPDATE users",
    ]
    assert {s.parent.span_id for s in spans if s.parent} == {parent.get_span_context().span_id}
    select = attributes(spans[2])
    assert select["db.query.text"] == "SELECT * FROM users WHERE name = ? OR id IN (?)"
    assert select["db.system.name"] == "sqlite" and select["db.collection.name"] == "users"
    assert attributes(spans[1])["db.operation.batch.size"] == 2
    assert "secret" not in repr([attributes(s) for s in spans])


def test_the_connection_is_still_a_real_sqlite3_connection(tmp_path: Path) -> None:
    class MyConnection(sqlite3.Connection):
        marker = "mine"

    class MyCursor(sqlite3.Cursor):
        pass

    with instrumented("sqlite3") as rec:
        conn = sqlite3.connect(str(tmp_path / "db.sqlite"), factory=MyConnection)
        assert isinstance(conn, MyConnection) and isinstance(conn, sqlite3.Connection)
        assert conn.marker == "mine"
        conn.row_factory = sqlite3.Row
        conn.create_function("double", 1, lambda x: x * 2)
        row = conn.execute("SELECT double(21) AS answer").fetchone()
        assert row["answer"] == 42
        cur = conn.cursor(MyCursor)
        assert isinstance(cur, MyCursor)
        cur.execute("SELECT 1")
        with sqlite3.connect(":memory:") as target:
            conn.backup(target)
        conn.close()
        assert len(rec.spans()) == 2


def test_errors_are_recorded_and_reach_the_app_unchanged() -> None:
    with instrumented("sqlite3") as rec:
        conn = sqlite3.connect(":memory:")
        conn.execute("CREATE TABLE t (k TEXT UNIQUE)")
        conn.execute("INSERT INTO t VALUES ('unique-secret')")
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE constraint failed"):
            conn.execute("INSERT INTO t VALUES ('unique-secret')")
        with pytest.raises(sqlite3.OperationalError, match="syntax error"):
            conn.execute("SELEC nonsense")
        failed, syntax = rec.spans()[-2:]
    assert failed.status.status_code == StatusCode.ERROR
    assert attributes(failed)["error.type"] == "sqlite3.IntegrityError"
    assert attributes(failed)["db.response.status_code"] == "SQLITE_CONSTRAINT_UNIQUE"
    assert [e.name for e in failed.events] == ["exception"]
    assert syntax.status.status_code == StatusCode.ERROR
    assert "unique-secret" not in repr([attributes(s) for s in (failed, syntax)])
    assert "unique-secret" not in repr([dict(e.attributes or {}) for e in failed.events])


def test_statement_modes_and_uninstall() -> None:
    with instrumented("sqlite3", AUTOTRACE_DB_STATEMENT="off") as rec:
        sqlite3.connect(":memory:").execute("SELECT 'x'")
        (off,) = rec.spans()
    assert "db.query.text" not in attributes(off) and off.name == "SELECT"
    with instrumented("sqlite3", AUTOTRACE_DB_STATEMENT="raw") as rec:
        conn = sqlite3.connect(":memory:")
        conn.execute("SELECT 'visible'")
        (raw,) = rec.spans()
    assert attributes(raw)["db.query.text"] == "SELECT 'visible'"
    rec.clear()
    conn.execute("SELECT 1")  # uninstalled: a connection handed out before stops tracing too
    sqlite3.connect(":memory:").execute("SELECT 1")
    assert rec.spans() == []
    assert sqlite3.connect is sqlite3.dbapi2.connect
