"""A small Starlette service for bench/collector_faults.py: each request makes three spans.

``GET /items/{item_id}`` runs two sqlite3 queries, so autotrace makes one SERVER span and two CLIENT
spans per request. ``GET /stats`` answers ``autotrace.status()``'s export counters, this process's id
and its threads' native ids and names; the benchmark excludes it from tracing
(``OTEL_PYTHON_EXCLUDED_URLS=/stats``), so reading it makes no span. The app knows nothing of the
benchmark: it is served as any app would be, ``autotrace uvicorn bench.apps.faults_app:app``.
"""

from __future__ import annotations

import os
import sqlite3
import threading

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ITEMS = 1000
_local = threading.local()


def _db() -> sqlite3.Connection:
    """One in-memory database per thread (a sqlite3 connection stays in the thread that made it)."""
    conn: sqlite3.Connection | None = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(":memory:")
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
        conn.executemany(
            "INSERT INTO items (id, name, price) VALUES (?, ?, ?)",
            [(i, f"item-{i}", (i * 37) % 500 / 10) for i in range(1, ITEMS + 1)],
        )
        _local.conn = conn
    return conn


async def item(request: Request) -> JSONResponse:
    item_id = request.path_params["item_id"]
    conn = _db()
    row = conn.execute("SELECT id, name, price FROM items WHERE id = ?", (item_id,)).fetchone()
    if row is None:
        return JSONResponse({"error": "no such item"}, status_code=404)
    cheaper = conn.execute("SELECT count(*) FROM items WHERE price < ?", (row[2],)).fetchone()[0]
    return JSONResponse({"id": row[0], "name": row[1], "price": row[2], "cheaper": cheaper})


async def stats(request: Request) -> JSONResponse:
    import autotrace

    status = autotrace.status()
    threads = [[t.native_id, t.name] for t in threading.enumerate()]
    return JSONResponse(
        {
            "pid": os.getpid(),
            "export": status["export"],
            "internal_errors": status["internal_errors"],
            "threads": threads,
        }
    )


app = Starlette(routes=[Route("/items/{item_id:int}", item), Route("/stats", stats)])
