"""psycopg2 against the real PostgreSQL: real connection objects, every cursor class traced."""

from __future__ import annotations

import io
import secrets
import uuid
from collections.abc import Iterator

import psycopg2
import psycopg2.extensions
import psycopg2.extras
import psycopg2.pool
import pytest
from opentelemetry.trace import StatusCode

from tests.instrumentation.conftest import POSTGRES, Recorder, attributes, instrumented, require_service

DSN = "dbname={dbname} user={user} host={host} port={port}".format(**POSTGRES)


@pytest.fixture
def rec() -> Iterator[Recorder]:
    require_service("PostgreSQL", 5432)
    with instrumented("psycopg2") as recorder:
        yield recorder


def test_connection_stays_real_and_extras_work(rec: Recorder) -> None:
    name = "t_" + secrets.token_hex(4)
    with rec.tracer.start_as_current_span("request") as parent:
        conn = psycopg2.connect(DSN)
        assert isinstance(conn, psycopg2.extensions.connection)
        psycopg2.extras.register_uuid(conn_or_curs=conn)  # C code that insists on a real connection
        psycopg2.extensions.register_type(psycopg2.extensions.UNICODE, conn)
        cur = conn.cursor()
        cur.execute(f"CREATE TEMP TABLE {name} (id int PRIMARY KEY, token uuid, email text)")
        secret = uuid.uuid4()
        psycopg2.extras.execute_values(
            cur, f"INSERT INTO {name} VALUES %s", [(1, secret, "a@secret"), (2, secret, "b@secret")]
        )
        cur.executemany(f"INSERT INTO {name} VALUES (%s, %s, %s)", [(3, secret, "c"), (4, secret, "d")])
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as dict_cursor:
            assert isinstance(dict_cursor, psycopg2.extras.RealDictCursor)
            dict_cursor.execute(f"SELECT * FROM {name} WHERE email = %s", ("a@secret",))
            assert dict_cursor.fetchone()["token"] == secret
        named = conn.cursor("server_side")
        named.execute(f"SELECT * FROM {name}")
        assert len(named.fetchmany(2)) == 2 and len(named.fetchall()) == 2
        named.close()
        conn.close()
    spans = rec.spans()
    assert [s.name for s in spans] == [
        f"CREATE TABLE {name}",
        f"INSERT {name}",
        f"BATCH INSERT {name}",
        f"SELECT {name}",
        f"SELECT {name}",
    ]
    assert {s.parent.span_id for s in spans if s.parent} == {parent.get_span_context().span_id}
    values = attributes(spans[1])
    assert values["db.query.text"] == f"INSERT INTO {name} VALUES (?,?::uuid,?)"  # the rows, collapsed
    assert values["server.address"] == "127.0.0.1" and values["db.namespace"] == "postgres"
    assert attributes(spans[2])["db.operation.batch.size"] == 2
    everything = repr([attributes(s) for s in spans])
    assert "secret" not in everything and str(secret) not in everything


def test_connection_and_cursor_factories(rec: Recorder) -> None:
    class MyCursor(psycopg2.extensions.cursor):
        pass

    class MyConnection(psycopg2.extensions.connection):
        pass

    conn = psycopg2.connect(DSN, connection_factory=MyConnection, cursor_factory=MyCursor)
    assert isinstance(conn, MyConnection)
    cur = conn.cursor()
    assert isinstance(cur, MyCursor)
    cur.execute("SELECT 1")
    dict_conn = psycopg2.connect(DSN, connection_factory=psycopg2.extras.DictConnection)
    dict_cur = dict_conn.cursor()  # DictConnection picks DictCursor itself
    assert isinstance(dict_cur, psycopg2.extras.DictCursor)
    dict_cur.execute("SELECT 2 AS x")
    assert dict_cur.fetchone()["x"] == 2
    logging_conn = psycopg2.connect(DSN, connection_factory=psycopg2.extras.LoggingConnection)
    logging_conn.initialize(io.StringIO())
    logging_conn.cursor().execute("SELECT 3")
    pool = psycopg2.pool.SimpleConnectionPool(1, 2, DSN)
    pooled = pool.getconn()
    pooled.cursor().execute("SELECT 4")
    pool.putconn(pooled)
    pool.closeall()
    for c in (conn, dict_conn, logging_conn):
        c.close()
    assert len(rec.spans()) == 4


def test_errors_and_transactions(rec: Recorder) -> None:
    conn = psycopg2.connect(DSN)
    cur = conn.cursor()
    cur.execute("CREATE TEMP TABLE t_err (k text PRIMARY KEY)")
    cur.execute("INSERT INTO t_err VALUES ('dup-secret')")
    with pytest.raises(psycopg2.errors.UniqueViolation):
        cur.execute("INSERT INTO t_err VALUES ('dup-secret')")
    conn.rollback()
    with pytest.raises(psycopg2.errors.SyntaxError):
        cur.execute("SELEC 1")
    conn.close()
    unique, syntax = rec.spans()[-2:]
    assert unique.status.status_code == StatusCode.ERROR
    assert attributes(unique)["db.response.status_code"] == "23505"
    assert attributes(unique)["error.type"] == "psycopg2.errors.UniqueViolation"
    assert attributes(syntax)["db.response.status_code"] == "42601"
    assert "dup-secret" not in repr([dict(e.attributes or {}) for e in unique.events])


def test_uninstall_stops_tracing_of_connections_already_open() -> None:
    require_service("PostgreSQL", 5432)
    with instrumented("psycopg2") as rec:
        conn = psycopg2.connect(DSN)
        conn.cursor().execute("SELECT 1")
        assert len(rec.spans()) == 1
    rec.clear()
    conn.cursor().execute("SELECT 1")
    psycopg2.connect(DSN).cursor().execute("SELECT 1")
    conn.close()
    assert rec.spans() == []
