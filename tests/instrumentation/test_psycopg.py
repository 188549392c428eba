"""psycopg 3 against the real PostgreSQL: every entry point one span, sync and async."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import psycopg
import pytest
from opentelemetry.trace import StatusCode
from psycopg import sql

from tests.instrumentation.conftest import POSTGRES_DSN, Recorder, attributes, instrumented, require_service


@pytest.fixture
def rec() -> Iterator[Recorder]:
    require_service("PostgreSQL", 5432)
    with instrumented("psycopg") as recorder:
        yield recorder


def table() -> str:
    return "t_" + secrets.token_hex(4)


def test_sync_entry_points_one_span_each(rec: Recorder) -> None:
    name = table()
    with rec.tracer.start_as_current_span("request") as parent, psycopg.connect(POSTGRES_DSN) as conn:
        conn.execute(f"CREATE TEMP TABLE {name} (id int PRIMARY KEY, email text)")
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {name} VALUES (%s, %s)", [(1, "a@secret"), (2, "b@secret")])
            cur.execute(f"SELECT * FROM {name} WHERE email = 'c@secret' OR id IN (1, 2, 3)")
            assert len(cur.fetchall()) == 2
            assert [r[0] for r in cur.stream(f"SELECT id FROM {name} ORDER BY id")] == [1, 2]
            with cur.copy(f"COPY {name} (id, email) FROM STDIN") as copy:
                copy.write_row((3, "d@secret"))
        with conn.cursor(name="server_side") as server:
            server.execute(f"SELECT * FROM {name}")
            server.fetchmany(1)
            server.fetchall()
        with psycopg.ClientCursor(conn) as client:
            client.execute(f"SELECT * FROM {name} WHERE id = %s", (1,))
        conn.execute(sql.SQL("SELECT {} FROM {}").format(sql.Identifier("email"), sql.Identifier(name)))
    spans = rec.spans()
    summaries = [s.name for s in spans]
    assert summaries == [
        f"CREATE TABLE {name}",
        f"BATCH INSERT {name}",
        f"SELECT {name}",
        f"SELECT {name}",
        f"COPY {name}",
        f"SELECT {name}",
        f"SELECT {name}",
        f"SELECT {name}",
    ]
    assert {s.parent.span_id for s in spans if s.parent} == {parent.get_span_context().span_id}
    first = attributes(spans[2])
    assert first["db.query.text"] == f"SELECT * FROM {name} WHERE email = ? OR id IN (?)"
    assert first["db.system.name"] == "postgresql" and first["db.namespace"] == "postgres"
    assert first["server.address"] == "127.0.0.1" and first["server.port"] == 5432
    assert attributes(spans[1])["db.operation.batch.size"] == 2
    assert attributes(spans[-1])["db.query.text"] == f'SELECT "email" FROM "{name}"'
    assert "secret" not in repr([attributes(s) for s in spans])


def test_stream_span_lasts_until_the_rows_are_read(rec: Recorder) -> None:
    with psycopg.connect(POSTGRES_DSN) as conn, conn.cursor() as cur:
        rows = cur.stream("SELECT generate_series(1, 3)")
        assert next(rows) == (1,)
        assert rec.spans() == []  # still reading
        assert list(rows) == [(2,), (3,)]
        assert len(rec.spans()) == 1


def test_async_entry_points(rec: Recorder) -> None:
    name = table()

    async def main() -> list[int]:
        async with await psycopg.AsyncConnection.connect(POSTGRES_DSN) as conn:
            await conn.execute(f"CREATE TEMP TABLE {name} (id int, note text)")
            async with conn.cursor() as cur:
                await cur.executemany(f"INSERT INTO {name} VALUES (%s, %s)", [(1, "x"), (2, "y")])
                await cur.execute(f"SELECT id FROM {name} WHERE note <> 'async-secret'")
                got = [r[0] for r in await cur.fetchall()]
                async for _ in cur.stream(f"SELECT * FROM {name}"):
                    pass
                async with cur.copy(f"COPY {name} FROM STDIN") as copy:
                    await copy.write_row((3, "z"))
            async with conn.cursor(name="named") as server:
                await server.execute(f"SELECT * FROM {name}")
                await server.fetchall()
            return got

    with rec.tracer.start_as_current_span("request") as parent:
        assert asyncio.run(main()) == [1, 2]
    spans = rec.spans()
    assert [s.name for s in spans] == [
        f"CREATE TABLE {name}",
        f"BATCH INSERT {name}",
        f"SELECT {name}",
        f"SELECT {name}",
        f"COPY {name}",
        f"SELECT {name}",
    ]
    assert {s.parent.span_id for s in spans if s.parent} == {parent.get_span_context().span_id}
    assert "async-secret" not in repr([attributes(s) for s in spans])


def test_concurrent_tasks_keep_their_own_parents(rec: Recorder) -> None:
    async def one(label: str) -> None:
        with rec.tracer.start_as_current_span(label):
            async with await psycopg.AsyncConnection.connect(POSTGRES_DSN) as conn:
                await conn.execute("SELECT pg_sleep(0.05)")
                await conn.execute("SELECT 1")

    async def main() -> None:
        await asyncio.gather(one("a"), one("b"))

    asyncio.run(main())
    parents = {s.name: s.context.span_id for s in rec.spans(kind=None) if s.name in ("a", "b")}
    queries = rec.spans()
    assert len(queries) == 4
    for label, span_id in parents.items():
        assert len([q for q in queries if q.parent and q.parent.span_id == span_id]) == 2, label


def test_errors_carry_sqlstate_and_reach_the_app(rec: Recorder) -> None:
    name = table()
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE TEMP TABLE {name} (k text PRIMARY KEY)")
        conn.execute(f"INSERT INTO {name} VALUES ('dup-secret')")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(f"INSERT INTO {name} VALUES ('dup-secret')")
        with pytest.raises(psycopg.errors.SyntaxError):
            conn.execute("SELEC 1")
    unique, syntax = rec.spans()[-2:]
    assert unique.status.status_code == StatusCode.ERROR
    assert attributes(unique)["error.type"] == "psycopg.errors.UniqueViolation"
    assert attributes(unique)["db.response.status_code"] == "23505"
    assert attributes(syntax)["db.response.status_code"] == "42601"
    event = dict(unique.events[0].attributes or {})
    assert event["exception.type"] == "psycopg.errors.UniqueViolation"
    # The server's message names the duplicate value: it is not recorded.
    assert "dup-secret" not in repr(event) and "dup-secret" not in repr(attributes(unique))


def test_transactions_pipeline_and_pool(rec: Recorder) -> None:
    from psycopg_pool import ConnectionPool

    name = table()
    with psycopg.connect(POSTGRES_DSN) as conn:
        assert type(conn) is psycopg.Connection
        conn.execute(f"CREATE TEMP TABLE {name} (id int)")
        with conn.transaction():
            conn.execute(f"INSERT INTO {name} VALUES (1)")
        with conn.pipeline():
            conn.execute(f"INSERT INTO {name} VALUES (2)")
            cur = conn.execute(f"SELECT count(*) FROM {name}")
        assert cur.fetchone() == (2,)
    # BEGIN/COMMIT of conn.transaction() go through psycopg's internals: no spans of their own.
    assert [s.name for s in rec.spans()] == [
        f"CREATE TABLE {name}",
        f"INSERT {name}",
        f"INSERT {name}",
        f"SELECT {name}",
    ]
    rec.clear()
    with ConnectionPool(POSTGRES_DSN, min_size=1, max_size=2, open=True) as pool:
        with pool.connection() as conn:
            assert isinstance(conn, psycopg.Connection)
            conn.execute("SELECT 1")
        with pool.connection() as conn:
            conn.execute("SELECT 2")
    assert [s.name for s in rec.spans()] == ["SELECT", "SELECT"]


def test_sql_comment_carries_the_span_context() -> None:
    require_service("PostgreSQL", 5432)
    with instrumented("psycopg", AUTOTRACE_SQLCOMMENTER="true") as rec, psycopg.connect(POSTGRES_DSN) as conn:
        seen = conn.execute("/*+ SeqScan(pg_class) */ SELECT current_query();").fetchone()
        (span,) = rec.spans()
    assert seen is not None
    ctx = span.context
    expected = f"/*traceparent='00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}'*/;"
    assert ctx.trace_flags & 1
    # After the statement (so after a leading optimizer hint), before the final semicolon.
    assert seen[0] == f"/*+ SeqScan(pg_class) */ SELECT current_query() {expected}"
    # The recorded text is the app's statement, without our comment.
    assert "traceparent" not in attributes(span)["db.query.text"]


def test_connect_spans_on_request_and_uninstall() -> None:
    require_service("PostgreSQL", 5432)
    with instrumented("psycopg", AUTOTRACE_DB_CONNECT_SPANS="true") as rec:
        psycopg.connect(POSTGRES_DSN).close()
        (connect,) = rec.spans()
    assert connect.name == "connect" and attributes(connect)["db.system.name"] == "postgresql"
    with instrumented("psycopg") as rec:
        conn = psycopg.connect(POSTGRES_DSN)
        assert rec.spans() == []  # no connect span by default
    rec.clear()
    conn.execute("SELECT 1")
    conn.close()
    assert rec.spans() == []
