"""A Starlette app whose one request queries every database driver autotrace instruments.

Each driver's query names its own table (so its span can be told apart) and carries literals and
parameters that must never reach the exporter: ``SECRET_LITERAL`` in the SQL text, ``SECRET_PARAM``
as a bound parameter, ``SECRET_KEY``/``SECRET_VALUE`` for Redis.
"""

from __future__ import annotations

import sqlite3

import asyncpg
import psycopg
import psycopg2
import pymysql
import redis
import redis.asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SECRET_LITERAL = "literal-5ecret-4711"
SECRET_PARAM = "param-5ecret-0815"
SECRET_KEY = "key-5ecret-42"
SECRET_VALUE = "value-5ecret-43"
PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def sync_queries() -> dict[str, object]:
    out: dict[str, object] = {}
    with sqlite3.connect(":memory:") as conn:
        conn.execute("CREATE TABLE lite_orders (id INTEGER, note TEXT)")
        conn.execute(f"INSERT INTO lite_orders VALUES (1, '{SECRET_LITERAL}')")
        query = "SELECT count(*) FROM lite_orders WHERE note <> ?"
        out["sqlite3"] = conn.execute(query, (SECRET_PARAM,)).fetchone()[0]
    with psycopg.connect(PG) as conn:
        row = conn.execute(
            f"SELECT count(*) FROM pg_class WHERE relname IN ('{SECRET_LITERAL}', %s)", (SECRET_PARAM,)
        ).fetchone()
        out["psycopg"] = row[0] if row else None
    conn2 = psycopg2.connect("dbname=postgres user=postgres host=127.0.0.1")
    with conn2.cursor() as cur:
        query = f"SELECT count(*) FROM pg_namespace WHERE nspname IN ('{SECRET_LITERAL}', %s)"
        cur.execute(query, (SECRET_PARAM,))
        out["psycopg2"] = cur.fetchone()[0]
    conn2.close()
    conn3 = pymysql.connect(host="127.0.0.1", user="root", password="", database="test")
    with conn3.cursor() as cur:
        cur.execute(
            f"SELECT count(*) FROM information_schema.tables WHERE table_name IN ('{SECRET_LITERAL}', %s)",
            (SECRET_PARAM,),
        )
        out["pymysql"] = cur.fetchone()[0]
    conn3.close()
    client = redis.Redis(host="127.0.0.1", port=6379)
    client.set(SECRET_KEY, SECRET_VALUE, ex=60)
    out["redis"] = client.get(SECRET_KEY) == SECRET_VALUE.encode()
    client.close()
    return out


async def order(request: Request) -> JSONResponse:
    from starlette.concurrency import run_in_threadpool

    out = await run_in_threadpool(sync_queries)
    conn = await asyncpg.connect(PG)
    try:
        out["asyncpg"] = await conn.fetchval(
            f"SELECT count(*) FROM pg_database WHERE datname IN ('{SECRET_LITERAL}', $1)", SECRET_PARAM
        )
    finally:
        await conn.close()
    async with await psycopg.AsyncConnection.connect(PG) as aconn:
        cur = await aconn.execute(f"SELECT count(*) FROM pg_am WHERE amname = '{SECRET_LITERAL}'")
        out["psycopg-async"] = (await cur.fetchone() or [None])[0]
    aclient = redis.asyncio.Redis(host="127.0.0.1", port=6379)
    out["redis-async"] = await aclient.exists(SECRET_KEY)
    await aclient.aclose()
    return JSONResponse(out)


app = Starlette(routes=[Route("/orders/{order_id}", order)])
