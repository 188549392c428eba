"""PyMySQL against the real MariaDB: the driver added purely through the shared DB-API layer."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pymysql
import pymysql.cursors
import pytest
from opentelemetry.trace import StatusCode

from tests.instrumentation.conftest import MARIADB, Recorder, attributes, instrumented, require_service


@pytest.fixture
def rec() -> Iterator[Recorder]:
    require_service("MariaDB", 3306)
    with instrumented("pymysql") as recorder:
        yield recorder


def connect() -> pymysql.connections.Connection:
    return pymysql.connect(**MARIADB)


def test_entry_points_attributes_and_no_literals(rec: Recorder) -> None:
    name = "t_" + secrets.token_hex(4)
    with rec.tracer.start_as_current_span("request") as parent:
        conn = connect()
        with conn.cursor() as cur:
            cur.execute(f"CREATE TEMPORARY TABLE {name} (id INT PRIMARY KEY, email VARCHAR(64))")
            cur.executemany(f"INSERT INTO {name} VALUES (%s, %s)", [(1, "a@secret"), (2, "b@secret")])
            cur.executemany(f"UPDATE {name} SET email = %s WHERE id = %s", [("c@secret", 1), ("d", 2)])
            cur.execute(f"SELECT * FROM {name} WHERE email = \"x@secret\" OR email = 'it\\'s secret'")
        with conn.cursor(pymysql.cursors.SSDictCursor) as unbuffered:
            unbuffered.execute(f"SELECT * FROM {name} WHERE id > %s", (0,))
            assert [row["id"] for row in unbuffered.fetchall_unbuffered()] == [1, 2]
        conn.close()
    spans = rec.spans()
    assert [s.name for s in spans] == [
        f"CREATE TABLE {name}",
        f"BATCH INSERT {name}",
        f"BATCH UPDATE {name}",
        f"SELECT {name}",
        f"SELECT {name}",
    ]
    assert {s.parent.span_id for s in spans if s.parent} == {parent.get_span_context().span_id}
    select = attributes(spans[3])
    assert select["db.query.text"] == f"SELECT * FROM {name} WHERE email = ? OR email = ?"
    assert select["db.system.name"] == "mariadb" and select["db.namespace"] == "test"
    assert select["server.address"] == "127.0.0.1" and select["server.port"] == 3306
    assert attributes(spans[1])["db.operation.batch.size"] == 2
    assert "secret" not in repr([attributes(s) for s in spans])


def test_errors_carry_the_error_number(rec: Recorder) -> None:
    conn = connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TEMPORARY TABLE t_err (k VARCHAR(32) PRIMARY KEY)")
        cur.execute("INSERT INTO t_err VALUES ('dup-secret')")
        with pytest.raises(pymysql.err.IntegrityError) as caught:
            cur.execute("INSERT INTO t_err VALUES ('dup-secret')")
        assert caught.value.args[0] == 1062
        with pytest.raises(pymysql.err.ProgrammingError):
            cur.execute("SELEC 1")
    conn.close()
    unique, syntax = rec.spans()[-2:]
    assert unique.status.status_code == StatusCode.ERROR
    assert attributes(unique)["db.response.status_code"] == "1062"
    assert attributes(unique)["error.type"] == "pymysql.err.IntegrityError"
    assert attributes(syntax)["db.response.status_code"] == "1064"
    event = dict(unique.events[0].attributes or {})
    assert event["exception.message"] == "Duplicate entry ? for key ?"
    assert "dup-secret" not in repr(event)


def test_transactions_and_uninstall() -> None:
    require_service("MariaDB", 3306)
    with instrumented("pymysql") as rec:
        conn = connect()
        conn.begin()
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        conn.commit()
        assert [s.name for s in rec.spans()] == ["SELECT"]
    rec.clear()
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
    conn.close()
    assert rec.spans() == []
