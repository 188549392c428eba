"""asyncpg against the real PostgreSQL: every entry point one span, asyncpg's own queries none."""

from __future__ import annotations

import asyncio
import io
import json
import os
import secrets
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from tests.instrumentation.conftest import POSTGRES_DSN, Recorder, attributes, instrumented, require_service

T = TypeVar("T")
SECRET = "secret-literal-123"
PARAM = "param-value-456"
SOCKET_DIR = "/var/run/postgresql"


@pytest.fixture
def rec() -> Iterator[Recorder]:
    require_service("PostgreSQL", 5432)
    with instrumented("asyncpg") as recorder:
        yield recorder


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def names(spans: list[ReadableSpan]) -> list[str]:
    return [s.name for s in spans]


def recorded(spans: list[ReadableSpan]) -> str:
    """Everything the spans carry, as one string to search for values that must not be there."""
    return repr([(s.name, attributes(s), [dict(e.attributes or {}) for e in s.events]) for s in spans])


@asynccontextmanager
async def connected(**kwargs: Any) -> AsyncIterator[Any]:
    conn = await asyncpg.connect(POSTGRES_DSN, **kwargs)
    try:
        yield conn
    finally:
        await conn.close()


@asynccontextmanager
async def scratch(
    rec: Recorder, conn: Any, columns: str = "id int PRIMARY KEY, name text"
) -> AsyncIterator[str]:
    """A temporary table with a name of its own; its CREATE is cleared, its DROP is the last span."""
    name = "t_" + secrets.token_hex(4)
    await conn.execute(f"CREATE TEMP TABLE {name} ({columns})")
    rec.clear()
    try:
        yield name
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {name}")


def queries(rec: Recorder) -> list[ReadableSpan]:
    """The spans of a test that used ``scratch``, without the table's DROP."""
    spans = rec.spans()
    assert spans and spans[-1].name.startswith("DROP TABLE")
    return spans[:-1]


def test_connection_methods_one_span_each(rec: Recorder) -> None:
    async def main() -> str:
        async with connected() as conn, scratch(rec, conn) as name:
            insert = f"INSERT INTO {name} VALUES ($1, $2)"
            await conn.executemany(insert, [(1, PARAM), (2, "b"), (3, "c")])
            await conn.executemany(command=insert, args=[(4, "d"), (5, "e")])
            await conn.executemany(insert, [(6, "f")])
            assert len(await conn.fetch(f"SELECT * FROM {name} WHERE name <> '{SECRET}'")) == 6
            assert (await conn.fetchrow(f"SELECT * FROM {name} WHERE name = $1", PARAM))["id"] == 1
            assert await conn.fetchval(f"SELECT count(*) FROM {name} WHERE id > 3") == 3
            assert await conn.execute(f"UPDATE {name} SET name = 'x' WHERE id = $1", 6) == "UPDATE 1"
            assert await conn.execute(f"DELETE FROM {name} WHERE name = '{SECRET}'") == "DELETE 0"
            rows = await conn.fetchmany(f"{insert} RETURNING id", [(7, "g"), (8, "h")])
            assert [r["id"] for r in rows] == [7, 8]
            return name

    with rec.tracer.start_as_current_span("request") as parent:
        name = run(main())
    spans = queries(rec)
    assert names(spans) == [
        f"BATCH INSERT {name}",
        f"BATCH INSERT {name}",
        f"INSERT {name}",
        f"SELECT {name}",
        f"SELECT {name}",
        f"SELECT {name}",
        f"UPDATE {name}",
        f"DELETE {name}",
        f"BATCH INSERT {name}",
    ]
    assert {s.parent.span_id for s in spans if s.parent} == {parent.get_span_context().span_id}
    assert all(s.parent for s in spans)
    batch, by_keyword, single, select = (attributes(s) for s in spans[:4])
    assert batch["db.operation.batch.size"] == 3 and by_keyword["db.operation.batch.size"] == 2
    assert "db.operation.batch.size" not in single
    assert attributes(spans[-1])["db.operation.batch.size"] == 2
    assert select == {
        "db.system.name": "postgresql",
        "db.namespace": "postgres",
        "server.address": "127.0.0.1",
        "server.port": 5432,
        "db.query.text": f"SELECT * FROM {name} WHERE name <> ?",
        "db.operation.name": "SELECT",
        "db.collection.name": name,
        "db.query.summary": f"SELECT {name}",
    }
    assert attributes(spans[4])["db.query.text"] == f"SELECT * FROM {name} WHERE name = $1"
    assert SECRET not in recorded(spans) and PARAM not in recorded(spans)


def test_copy_methods_record_the_table_not_the_options(rec: Recorder) -> None:
    async def main() -> tuple[str, str]:
        async with connected() as conn, scratch(rec, conn) as name:
            schema = await conn.fetchval("SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema()")
            rec.clear()
            source = io.BytesIO(b"1\ta\n2\tb\n")
            await conn.copy_to_table(name, source=source, where=f"name <> '{SECRET}'")
            await conn.copy_records_to_table(name, records=[(3, PARAM)], schema_name=schema)
            out = io.BytesIO()
            await conn.copy_from_table(name, output=out, columns=["id"], delimiter=",")
            assert out.getvalue().split() == [b"1", b"2", b"3"]
            out = io.BytesIO()
            # asyncpg puts the argument into the text with queries of its own: part of this one span.
            query = f"SELECT name FROM {name} WHERE id = $1 OR name = '{SECRET}'"
            await conn.copy_from_query(query, 3, output=out)
            assert out.getvalue() == PARAM.encode() + b"\n"
            return name, schema

    name, schema = run(main())
    spans = queries(rec)
    assert names(spans) == [f"COPY {name}", f"COPY {schema}.{name}", f"COPY {name}", "COPY"]
    assert [attributes(s).get("db.query.text") for s in spans] == [
        f'COPY "{name}" FROM STDIN',
        f'COPY "{schema}"."{name}" FROM STDIN',
        f'COPY "{name}" TO STDOUT',
        f"COPY (SELECT name FROM {name} WHERE id = $1 OR name = ?) TO STDOUT",
    ]
    assert [attributes(s).get("db.collection.name") for s in spans] == [name, f"{schema}.{name}", name, None]
    assert {attributes(s)["db.operation.name"] for s in spans} == {"COPY"}
    assert SECRET not in recorded(spans) and PARAM not in recorded(spans)


def test_prepared_statements(rec: Recorder) -> None:
    async def main() -> str:
        async with connected() as conn, scratch(rec, conn) as name:
            await conn.executemany(f"INSERT INTO {name} VALUES ($1, $2)", [(1, "a"), (2, PARAM)])
            rec.clear()
            stmt = await conn.prepare(f"SELECT id, name FROM {name} WHERE id >= $1 AND name <> '{SECRET}'")
            assert len(await stmt.fetch(1)) == 2
            assert (await stmt.fetchrow(2))["name"] == PARAM
            assert await stmt.fetchval(2, column=1) == PARAM
            plan = await stmt.explain(1)
            assert plan[0]["Plan"]
            analyzed = await stmt.explain(1, analyze=True)  # in a transaction rolled back: one span
            assert "Actual Rows" in analyzed[0]["Plan"]
            insert = await conn.prepare(f"INSERT INTO {name} VALUES ($1, $2) RETURNING id")
            await insert.executemany([(3, PARAM), (4, "d")])
            assert [r["id"] for r in await insert.fetchmany([(5, "e"), (6, "f"), (7, "g")])] == [5, 6, 7]
            return name

    name = run(main())
    spans = queries(rec)
    assert names(spans) == [
        f"PREPARE SELECT {name}",
        f"SELECT {name}",
        f"SELECT {name}",
        f"SELECT {name}",
        "EXPLAIN",
        "EXPLAIN",
        f"PREPARE INSERT {name}",
        f"BATCH INSERT {name}",
        f"BATCH INSERT {name}",
    ]
    prepare, fetch = attributes(spans[0]), attributes(spans[1])
    text = f"SELECT id, name FROM {name} WHERE id >= $1 AND name <> ?"
    assert (
        prepare["db.operation.name"] == "PREPARE" and prepare["db.query.summary"] == f"PREPARE SELECT {name}"
    )
    assert prepare["db.query.text"] == fetch["db.query.text"] == text
    assert prepare["db.collection.name"] == fetch["db.collection.name"] == name
    assert attributes(spans[5])["db.query.text"] == f"EXPLAIN (FORMAT JSON, VERBOSE, ANALYZE) {text}"
    assert [attributes(s)["db.operation.batch.size"] for s in spans[-2:]] == [2, 3]
    assert SECRET not in recorded(spans) and PARAM not in recorded(spans)


def test_cursors_are_one_span_whatever_the_fetches(rec: Recorder) -> None:
    async def main() -> tuple[str, list[int], list[int]]:
        async with connected() as conn, scratch(rec, conn) as name:
            await conn.executemany(f"INSERT INTO {name} VALUES ($1, $2)", [(i, "n") for i in range(1, 6)])
            async with conn.transaction():
                rec.clear()
                # prefetch=2 over 5 rows: the portal is bound with 2 rows, then 2 fetches (2 and 1 rows).
                cursor = conn.cursor(
                    f"SELECT id FROM {name} WHERE name <> '{SECRET}' ORDER BY id", prefetch=2
                )
                iterated = [r["id"] async for r in cursor]
                first = rec.spans()
                cur = await conn.cursor(f"SELECT id FROM {name} WHERE id > $1 ORDER BY id", 0)
                fetched = [r["id"] for r in await cur.fetch(2)] + [r["id"] for r in await cur.fetch(2)]
                assert (await cur.fetchrow())["id"] == 5
                stmt = await conn.prepare(f"SELECT id FROM {name} ORDER BY id")
                assert [r["id"] async for r in stmt.cursor(prefetch=1)] == [1, 2, 3, 4, 5]
            assert names(first) == [f"SELECT {name}"]  # the iteration's span ended with its first step
            return name, iterated, fetched

    name, iterated, fetched = run(main())
    assert iterated == [1, 2, 3, 4, 5] and fetched == [1, 2, 3, 4]
    spans = queries(rec)
    assert names(spans) == [
        f"SELECT {name}",  # async for
        f"SELECT {name}",  # await conn.cursor(...), then its fetches
        f"PREPARE SELECT {name}",
        f"SELECT {name}",  # the prepared statement's cursor
        "COMMIT",
    ]
    assert attributes(spans[0])["db.query.text"] == f"SELECT id FROM {name} WHERE name <> ? ORDER BY id"
    assert attributes(spans[1])["db.query.text"] == f"SELECT id FROM {name} WHERE id > $1 ORDER BY id"
    assert SECRET not in recorded(spans)


def test_pool_one_span_per_query(rec: Recorder) -> None:
    name = "t_" + secrets.token_hex(4)

    async def main() -> None:
        async with connected() as conn:
            await conn.execute(f"CREATE TABLE {name} (id int)")
        try:
            async with asyncpg.create_pool(POSTGRES_DSN, min_size=1, max_size=2) as pool:
                rec.clear()
                await pool.execute(f"INSERT INTO {name} VALUES ($1)", 1)
                await pool.executemany(f"INSERT INTO {name} VALUES ($1)", [(2,), (3,)])
                assert len(await pool.fetch(f"SELECT * FROM {name}")) == 3
                assert await pool.fetchval(f"SELECT count(*) FROM {name}") == 3
                async with pool.acquire() as conn:
                    assert (await conn.fetchrow(f"SELECT max(id) FROM {name}"))[0] == 3
                    async with conn.transaction():
                        await conn.execute(f"DELETE FROM {name} WHERE id = 3")
                    await conn.execute("SET application_name = 'pooled'")  # RESET ALL on release: no span
                conn = await pool.acquire()
                await conn.fetchval("SELECT 1")
                await pool.release(conn)
        finally:
            async with connected() as conn:
                await conn.execute(f"DROP TABLE {name}")

    run(main())
    assert names(rec.spans())[:-1] == [
        f"INSERT {name}",
        f"BATCH INSERT {name}",
        f"SELECT {name}",
        f"SELECT {name}",
        f"SELECT {name}",
        "BEGIN",
        f"DELETE {name}",
        "COMMIT",
        "SET",
        "SELECT",
    ]


def test_transaction_statements_are_spans(rec: Recorder) -> None:
    async def main() -> str:
        async with connected() as conn, scratch(rec, conn) as name:
            async with conn.transaction():
                await conn.execute(f"INSERT INTO {name} VALUES (1, 'a')")
                async with conn.transaction():  # nested: a savepoint
                    await conn.execute(f"INSERT INTO {name} VALUES (2, 'b')")
            with pytest.raises(ZeroDivisionError):
                async with conn.transaction(isolation="serializable"):
                    await conn.execute(f"INSERT INTO {name} VALUES (3, 'c')")
                    raise ZeroDivisionError
            assert await conn.fetchval(f"SELECT count(*) FROM {name}") == 2
            return name

    name = run(main())
    spans = queries(rec)
    assert names(spans) == [
        "BEGIN",
        f"INSERT {name}",
        "SAVEPOINT",
        f"INSERT {name}",
        "RELEASE",
        "COMMIT",
        "BEGIN",
        f"INSERT {name}",
        "ROLLBACK",
        f"SELECT {name}",
    ]
    assert attributes(spans[6])["db.query.text"] == "BEGIN ISOLATION LEVEL SERIALIZABLE;"
    # The app's exception passed through the transaction: ROLLBACK itself succeeded.
    assert all(s.status.status_code != StatusCode.ERROR for s in spans)


def test_asyncpg_own_queries_make_no_spans(rec: Recorder) -> None:
    async def main() -> str:
        async with connected() as conn, scratch(rec, conn) as name:
            schema = await conn.fetchval("SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema()")
            await conn.execute(f"INSERT INTO {name} VALUES (1, 'a')")
            rec.clear()
            # The table's row type is new to this connection: asyncpg looks it up before decoding.
            row = await conn.fetchval(f"SELECT t FROM {name} AS t")
            assert tuple(row) == (1, "a")
            # Custom codecs: looked up with asyncpg's private queries, no spans.
            await conn.set_type_codec("json", schema="pg_catalog", encoder=json.dumps, decoder=json.loads)
            await conn.set_type_codec(name, schema=schema, encoder=tuple, decoder=tuple, format="tuple")
            assert await conn.fetchval("SELECT '[1]'::json") == [1]
            await conn.execute("BEGIN")
            await conn.reset()  # ROLLBACK, RESET ALL, UNLISTEN *...: no spans
            assert not conn.is_in_transaction()
            return name

    name = run(main())
    assert names(queries(rec)) == [f"SELECT {name}", "SELECT", "BEGIN"]


def test_errors_carry_sqlstate_and_reach_the_app(rec: Recorder) -> None:
    async def main() -> None:
        async with connected() as conn, scratch(rec, conn, "k text PRIMARY KEY") as name:
            await conn.execute(f"INSERT INTO {name} VALUES ('{SECRET}')")
            with pytest.raises(asyncpg.UniqueViolationError) as unique:
                await conn.execute(f"INSERT INTO {name} VALUES ('{SECRET}')")
            assert unique.value.sqlstate == "23505" and SECRET in unique.value.detail
            with pytest.raises(asyncpg.PostgresSyntaxError):
                await conn.fetch("SELEC 1")
            with pytest.raises(asyncpg.PostgresSyntaxError):
                await conn.prepare("SELEC 2")
            with pytest.raises(asyncpg.NoActiveSQLTransactionError):
                async for _ in conn.cursor("SELECT 1"):
                    pass

    run(main())
    unique, syntax, prepare, cursor = queries(rec)[1:]
    assert unique.status.status_code == StatusCode.ERROR
    assert attributes(unique)["error.type"] == "asyncpg.exceptions.UniqueViolationError"
    assert attributes(unique)["db.response.status_code"] == "23505"
    event = dict(unique.events[0].attributes or {})
    assert event["exception.type"] == "asyncpg.exceptions.UniqueViolationError"
    for span in (syntax, prepare):
        assert span.status.status_code == StatusCode.ERROR
        assert attributes(span)["error.type"] == "asyncpg.exceptions.PostgresSyntaxError"
        assert attributes(span)["db.response.status_code"] == "42601"
    assert (syntax.name, prepare.name) == ("SELEC", "PREPARE SELEC")
    assert attributes(cursor)["db.response.status_code"] == "25P01"
    # The server's message names the duplicate value (DETAIL: Key (k)=(...)): it is not recorded.
    assert SECRET not in recorded(queries(rec))


def test_concurrent_tasks_keep_their_own_parents(rec: Recorder) -> None:
    async def one(label: str) -> None:
        with rec.tracer.start_as_current_span(label):
            async with connected() as conn:
                await conn.fetchval("SELECT pg_sleep(0.05)")
                await conn.fetchval("SELECT 1")

    async def main() -> None:
        await asyncio.gather(one("a"), one("b"))

    run(main())
    parents = {s.name: s.context.span_id for s in rec.spans(kind=None) if s.name in ("a", "b")}
    spans = rec.spans()
    assert len(parents) == 2 and len(spans) == 4
    for label, span_id in parents.items():
        assert names([s for s in spans if s.parent and s.parent.span_id == span_id]) == [
            "SELECT",
            "SELECT",
        ], label


def test_sql_comment_carries_the_span_context() -> None:
    require_service("PostgreSQL", 5432)

    async def main() -> tuple[str, str]:
        async with connected() as conn:
            seen = await conn.fetchval("SELECT current_query();")
            stmt = await conn.prepare("SELECT current_query()")
            return seen, await stmt.fetchval()

    with instrumented("asyncpg", AUTOTRACE_SQLCOMMENTER="true") as rec:
        seen, prepared = run(main())
        span = rec.spans()[0]
    ctx = span.context
    expected = f"/*traceparent='00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}'*/;"
    assert ctx.trace_flags & 1
    assert seen == f"SELECT current_query() {expected}"
    assert prepared == "SELECT current_query()"  # a prepared statement is left as the app wrote it
    assert "traceparent" not in attributes(span)["db.query.text"]


def test_unix_socket_is_the_address_without_port(rec: Recorder) -> None:
    if not os.path.exists(os.path.join(SOCKET_DIR, ".s.PGSQL.5432")):
        pytest.skip(f"no PostgreSQL socket in {SOCKET_DIR}")

    async def main() -> None:
        conn = await asyncpg.connect(host=SOCKET_DIR, user="postgres", database="postgres")
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    run(main())
    (span,) = rec.spans()
    assert attributes(span)["server.address"] == os.path.join(SOCKET_DIR, ".s.PGSQL.5432")
    assert "server.port" not in attributes(span)
    assert attributes(span)["db.namespace"] == "postgres"


def test_connect_spans_on_request_and_uninstall() -> None:
    require_service("PostgreSQL", 5432)
    original = asyncpg.Connection.fetchval

    async def connect_and_query() -> None:
        async with connected(), asyncpg.create_pool(POSTGRES_DSN, min_size=1, max_size=1) as pool:
            await pool.fetchval("SELECT 1")

    with instrumented("asyncpg", AUTOTRACE_DB_CONNECT_SPANS="true") as rec:
        run(connect_and_query())
        spans = rec.spans()
    assert names(spans) == ["connect", "connect", "SELECT"]  # asyncpg.connect, then the pool's
    assert attributes(spans[0]) == {"db.system.name": "postgresql", "db.operation.name": "connect"}
    with instrumented("asyncpg") as rec:
        run(connect_and_query())
        assert names(rec.spans()) == ["SELECT"]  # no connect span by default
    rec.clear()
    assert asyncpg.Connection.fetchval is original and asyncpg.connect is asyncpg.connection.connect
    run(connect_and_query())
    assert rec.spans() == []
