"""Containment: a fault inside autotrace never changes what the app sees.

For each instrumentation a realistic operation runs once untraced (the baseline), then traced with one
of autotrace's own seams made to raise: the SDK calls we make (``start_span``, ``set_attribute``,
``record_exception``, ``end``), the propagator, the attribute builders, the SQL sanitizer, the
redaction helpers. What the app gets must be identical: return values, rows, statuses, bodies, the
headers the server saw (but the trace context). An operation that fails in the library must fail the
same way: same type and arguments, the library's own traceback (our frames aside), no injected error
chained on; an exception the app raises itself must come back as the very same object. Every injected
error must be reported exactly once through ``_errors.guard``, counted at each repeat, logged once.

Strict mode (which re-raises internal errors) is off here: containment is what is under test.

The web frameworks run in process (httpx's ASGI transport, Flask's test client) rather than behind a
server: a server would turn an error escaping the app into a log line and a 500 the client cannot tell
from the app's own, while these drivers hand it to the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import json
import os
import re
import socket
import sqlite3
import threading
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from http.client import HTTPConnection
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, NoReturn

import aiohttp
import asyncpg
import flask
import httpx
import psycopg
import psycopg2
import pymysql
import pytest
import redis
import redis.asyncio
import requests
import starlette.applications
import urllib3
import wrapt
from opentelemetry.sdk import trace as sdk_trace
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

import autotrace
from autotrace import _errors, _hooks, redact, sql
from autotrace.instrumentation import _dbapi, _http_client, _web
from autotrace.instrumentation import redis as redis_instrumentation
from autotrace.middleware import _server
from tests.e2e.conftest import Echo
from tests.instrumentation.conftest import (
    MARIADB,
    POSTGRES,
    POSTGRES_DSN,
    REDIS,
    Recorder,
    require_service,
)

# --------------------------------------------------------------------------------------------------
# Faults


class Injected(Exception):
    """The injected fault: a type no library raises, so any sight of it in the app is a leak."""


class Faults:
    """Raises ``Injected`` from the seams a fault replaced, counting how often it did."""

    def __init__(self) -> None:
        self.raised = 0

    def boom(self, seam: str) -> NoReturn:
        self.raised += 1
        raise Injected(seam)

    def function(self, seam: str) -> Callable[..., Any]:
        def failing(*args: Any, **kwargs: Any) -> Any:
            self.boom(seam)

        return failing

    def sdk_method(self, cls: type, name: str) -> Callable[..., Any]:
        """``cls.name`` failing for autotrace's tracers and spans only (the test's own keep working)."""
        original = getattr(cls, name)

        def method(obj: Any, *args: Any, **kwargs: Any) -> Any:
            scope = getattr(obj, "_instrumentation_scope", None) or getattr(
                obj, "instrumentation_scope", None
            )
            if scope is not None and scope.name.startswith("autotrace."):
                self.boom(f"{cls.__name__}.{name}")
            return original(obj, *args, **kwargs)

        return method


Apply = Callable[[pytest.MonkeyPatch, Faults, Recorder], None]


@dataclasses.dataclass(frozen=True)
class Fault:
    name: str
    apply: Apply
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __str__(self) -> str:
        return self.name


def _sdk(*names: str) -> Apply:
    def apply(mp: pytest.MonkeyPatch, faults: Faults, rec: Recorder) -> None:
        for name in names:
            cls = sdk_trace.Tracer if name == "start_span" else sdk_trace.Span
            mp.setattr(cls, name, faults.sdk_method(cls, name))

    return apply


def _function(owner: Any, name: str) -> Apply:
    def apply(mp: pytest.MonkeyPatch, faults: Faults, rec: Recorder) -> None:
        mp.setattr(owner, name, faults.function(f"{getattr(owner, '__name__', owner)}.{name}"))

    return apply


def _propagator(name: str) -> Apply:
    def apply(mp: pytest.MonkeyPatch, faults: Faults, rec: Recorder) -> None:
        mp.setattr(type(rec.tracing.propagator), name, faults.function(f"propagator.{name}"))

    return apply


_CAPTURE = {
    f"OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_{side}": "accept,content-type,user-agent"
    for side in ("CLIENT_REQUEST", "CLIENT_RESPONSE", "SERVER_REQUEST", "SERVER_RESPONSE")
}
_FAULTS = [
    Fault("start_span", _sdk("start_span")),
    Fault("set_attribute", _sdk("set_attribute", "set_attributes")),
    Fault("record_error", _sdk("record_exception", "set_status")),
    Fault("span.end", _sdk("end")),
    Fault("inject", _propagator("inject")),
    Fault("extract", _propagator("extract")),
    Fault("redact.url", _function(redact, "url")),
    Fault("full_url", _function(_http_client, "full_url")),
    Fault("redact.header_value", _function(redact, "header_value"), _CAPTURE),
    Fault("redact.query", _function(redact, "query")),
    Fault("query_attributes", _function(_dbapi, "query_attributes")),
    Fault("sql.sanitize", _function(sql, "sanitize")),
    Fault("sql.summarize", _function(sql, "summarize")),
    Fault("safe_exception", _function(_dbapi, "safe_exception")),
    Fault("response_code", _function(_dbapi, "response_code")),
    Fault("db_target", _function(_dbapi.TargetCache, "__call__")),
    Fault("sqlcommenter", _function(_dbapi, "traceparent_comment"), {"AUTOTRACE_SQLCOMMENTER": "true"}),
    Fault("redis.command_text", _function(redis_instrumentation, "command_text")),
    Fault("redis.pipeline_attributes", _function(redis_instrumentation, "pipeline_attributes")),
    Fault("redis.server_message", _function(redis_instrumentation, "server_message")),
    Fault("redis.target", _function(redis_instrumentation, "_target")),
    Fault("request_attributes", _function(_server, "_request_attributes")),
    Fault("set_route", _function(_server.ServerRequest, "set_route")),
    Fault("response_started", _function(_server.ServerRequest, "response_started")),
    Fault("server.record_exception", _function(_server.ServerRequest, "record_exception")),
    Fault("web.set_route", _function(_web, "set_route")),
    Fault("web.record_exception", _function(_web, "record_exception")),
]
FAULTS = {f.name: f for f in _FAULTS}

_SPAN = ("start_span", "set_attribute", "record_error", "span.end")
CLIENT = (*_SPAN, "inject", "redact.url", "redact.header_value")
DB = (*_SPAN, "query_attributes", "sql.sanitize", "sql.summarize", "safe_exception", "response_code")
DB += ("sqlcommenter",)
DB_SERVER = (*DB, "db_target")  # drivers that read where a connection points
SERVER = (*_SPAN, "extract", "request_attributes", "redact.query", "redact.header_value")
SERVER += ("set_route", "response_started", "server.record_exception")

# --------------------------------------------------------------------------------------------------
# The app's side: what it gets back


class AppError(Exception):
    """An exception the app raises itself, through our wrappers: it must come back as the same object."""


_app_errors: list[AppError] = []


def app_error(where: str) -> AppError:
    error = AppError(where)
    _app_errors.append(error)
    return error


Frame = tuple[str, int, str]
_OUR_DIRS = tuple(str(Path(m.__file__ or "").parent) + "/" for m in (autotrace, wrapt))


def ours(frame: Frame) -> bool:
    return frame[0].startswith(_OUR_DIRS)


def chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _norm(text: str) -> str:
    return re.sub(r" at 0x[0-9a-f]+", "", text)


@dataclasses.dataclass(frozen=True)
class Failure:
    """How an operation failed, in the terms the app sees."""

    kind: type[BaseException]
    args: str
    frames: tuple[Frame, ...]  # the traceback without our frames (and wrapt's)
    last: Frame
    chain: tuple[str, ...]
    leaked: bool  # an injected error is in the exception's cause/context chain
    same_object: bool | None  # for an app's own exception: is it the one it raised?


def failure(op: Callable[[Places], Any], places: Places) -> Failure:
    try:
        op(places)
    except Exception as exc:
        frames = tuple((f.filename, f.lineno or 0, f.name) for f in traceback.extract_tb(exc.__traceback__))
        links = chain(exc)
        return Failure(
            kind=type(exc),
            args=_norm(repr(exc.args)),
            frames=tuple(f for f in frames if not ours(f)),
            last=frames[-1],
            chain=tuple(type(e).__qualname__ for e in links),
            leaked=any(isinstance(e, Injected) for e in links),
            same_object=(exc is _app_errors[-1]) if isinstance(exc, AppError) else None,
        )
    raise AssertionError(f"{op} did not fail")


_PROPAGATION = frozenset({"traceparent", "tracestate", "baggage"})


def seen(headers: Mapping[str, Any]) -> dict[str, Any]:
    """The headers a server saw, less the trace context that only a traced client sends."""
    return {k.lower(): v for k, v in headers.items() if k.lower() not in _PROPAGATION}


def answered(headers: Any) -> list[tuple[str, str]]:
    """A response's headers, less the ones that change from one response to the next."""
    return sorted((k.lower(), v) for k, v in headers.items() if k.lower() not in ("date", "server"))


def echoed(status: int, body: bytes, headers: Any) -> tuple[Any, ...]:
    """The echo server's answer; its body lists the headers it got, so its length varies with them."""
    if not body.startswith(b"{"):
        return status, body, answered(headers)
    return status, seen(json.loads(body)), [h for h in answered(headers) if h[0] != "content-length"]


# --------------------------------------------------------------------------------------------------
# Where the operations go


@dataclasses.dataclass(frozen=True)
class Places:
    echo: str
    refused: str


@pytest.fixture(scope="module")
def places() -> Iterator[Places]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # Bound, never listening: connecting is refused, and no other test can take the port meanwhile.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    try:
        yield Places(
            f"http://127.0.0.1:{server.server_address[1]}", f"http://127.0.0.1:{closed.getsockname()[1]}"
        )
    finally:
        closed.close()
        server.shutdown()
        server.server_close()


# HTTP clients -------------------------------------------------------------------------------------


def _hostport(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def http_client_ok(p: Places) -> Any:
    conn = HTTPConnection(*_hostport(p.echo), timeout=10)
    try:
        conn.request("GET", "/echo?token=abc", headers={"Accept": "application/json", "X-App": "1"})
        first = conn.getresponse()
        one = echoed(first.status, first.read(), first.headers)
        conn.request("POST", "/status/404", body=b"{}", headers={"Content-Type": "application/json"})
        second = conn.getresponse()
        return one, echoed(second.status, second.read(), second.headers)
    finally:
        conn.close()


def http_client_refused(p: Places) -> Any:
    conn = HTTPConnection(*_hostport(p.refused), timeout=10)
    try:
        conn.request("GET", "/")
    finally:
        conn.close()


def urllib_ok(p: Places) -> Any:
    request = urllib.request.Request(p.echo + "/redirect?token=abc", headers={"Accept": "text/plain"})
    with urllib.request.urlopen(request, timeout=10) as response:
        first = response.url, echoed(response.status, response.read(), response.headers)
    try:
        urllib.request.urlopen(p.echo + "/status/503", timeout=10)
    except urllib.error.HTTPError as exc:
        return first, echoed(exc.code, exc.read(), exc.headers)
    raise AssertionError("no HTTPError")


def urllib_refused(p: Places) -> Any:
    return urllib.request.urlopen(p.refused + "/", timeout=10)


def requests_ok(p: Places) -> Any:
    with requests.Session() as session:
        out = []
        for response in (
            session.get(p.echo + "/redirect", params={"token": "abc"}, timeout=10),
            session.post(p.echo + "/status/500", json={"a": 1}, timeout=10),
        ):
            out.append(
                (
                    response.url,
                    len(response.history),
                    echoed(response.status_code, response.content, response.headers),
                )
            )
        return out


def requests_refused(p: Places) -> Any:
    return requests.get(p.refused + "/", timeout=10)


def requests_hook_raises(p: Places) -> Any:
    def hook(response: Any, **kwargs: Any) -> NoReturn:
        raise app_error("requests response hook")

    return requests.get(p.echo + "/echo", hooks={"response": hook}, timeout=10)


def urllib3_ok(p: Places) -> Any:
    with urllib3.PoolManager() as pool:
        first = pool.request("GET", p.echo + "/redirect?token=abc", headers={"Accept": "*/*"})
        second = pool.request("GET", p.echo + "/status/502")
        return [echoed(r.status, r.data, r.headers) for r in (first, second)]


def urllib3_refused(p: Places) -> Any:
    with urllib3.PoolManager() as pool:
        return pool.request("GET", p.refused + "/", retries=False)


def httpx_ok(p: Places) -> Any:
    with httpx.Client(follow_redirects=True, timeout=10) as client:
        first = client.get(p.echo + "/redirect", params={"token": "abc"}, headers={"Accept": "text/plain"})
        request = client.build_request("PUT", p.echo + "/status/500", content=b"x")
        second = client.send(request)
        return [
            (str(first.url), len(first.history), echoed(first.status_code, first.content, first.headers)),
            (dict(request.headers), echoed(second.status_code, second.content, second.headers)),
        ]


def httpx_refused(p: Places) -> Any:
    with httpx.Client(timeout=10) as client:
        return client.get(p.refused + "/")


def httpx_hook_raises(p: Places) -> Any:
    def hook(response: httpx.Response) -> NoReturn:
        raise app_error("httpx response hook")

    with httpx.Client(timeout=10, event_hooks={"response": [hook]}) as client:
        return client.get(p.echo + "/echo")


def httpx_async_ok(p: Places) -> Any:
    async def main() -> Any:
        async with httpx.AsyncClient(follow_redirects=True, timeout=10) as client:
            first = await client.get(p.echo + "/redirect", params={"token": "abc"})
            second = await client.delete(p.echo + "/status/503")
            return [echoed(r.status_code, r.content, r.headers) for r in (first, second)]

    return asyncio.run(main())


def httpx_async_refused(p: Places) -> Any:
    async def main() -> Any:
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.get(p.refused + "/")

    return asyncio.run(main())


def aiohttp_ok(p: Places) -> Any:
    async def main() -> Any:
        async with aiohttp.ClientSession() as session:
            out = []
            for url in (p.echo + "/redirect?token=abc", p.echo + "/status/500"):
                async with session.get(url, headers={"Accept": "text/plain"}) as response:
                    body = await response.read()
                    out.append(
                        (
                            str(response.url),
                            len(response.history),
                            echoed(response.status, body, response.headers),
                        )
                    )
            return out

    return asyncio.run(main())


def aiohttp_refused(p: Places) -> Any:
    async def main() -> Any:
        async with aiohttp.ClientSession() as session:
            return await session.get(p.refused + "/")

    return asyncio.run(main())


# Databases ----------------------------------------------------------------------------------------


def _rows_then_fail(*rows: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
    """Parameters for ``executemany`` that fail half-way with the app's own error."""
    yield from rows
    raise app_error("parameters")


def sqlite_ok(p: Places) -> Any:
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, note TEXT)")
        cur = conn.cursor()
        cur.executemany("INSERT INTO t VALUES (?, ?)", [(1, "a"), (2, "b")])
        cur.executescript("INSERT INTO t VALUES (3, 'c'); UPDATE t SET note = 'z' WHERE id = 3;")
        cur.execute("SELECT id, note FROM t WHERE note <> ? ORDER BY id", ("secret",))
        return cur.fetchall(), cur.description, conn.total_changes, type(conn).__mro__[-2].__name__
    finally:
        conn.close()


def sqlite_syntax(p: Places) -> Any:
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        return conn.execute("SELEC 1")


def sqlite_app_error(p: Places) -> Any:
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        conn.execute("CREATE TABLE t (id INTEGER)")
        return conn.cursor().executemany("INSERT INTO t VALUES (?)", _rows_then_fail((1,)))


_PG_TABLE = "CREATE TEMP TABLE c (id int PRIMARY KEY, note text)"


def psycopg_ok(p: Places) -> Any:
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(_PG_TABLE)
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO c VALUES (%s, %s)", [(1, "a"), (2, "b")])
            cur.execute("SELECT id, note FROM c WHERE note <> %s ORDER BY id", ("secret",))
            rows = cur.fetchall()
            streamed = list(cur.stream("SELECT id FROM c ORDER BY id"))
            with cur.copy("COPY c (id, note) FROM STDIN") as copy:
                copy.write_row((3, "c"))
            count = cur.execute("SELECT count(*) FROM c").fetchone()
        return rows, streamed, count


def psycopg_syntax(p: Places) -> Any:
    with psycopg.connect(POSTGRES_DSN) as conn:
        return conn.execute("SELEC 1")


def psycopg_app_error(p: Places) -> Any:
    with psycopg.connect(POSTGRES_DSN) as conn:
        conn.execute(_PG_TABLE)
        return conn.cursor().executemany("INSERT INTO c VALUES (%s, %s)", _rows_then_fail((1, "a")))


def psycopg_async_ok(p: Places) -> Any:
    async def main() -> Any:
        async with await psycopg.AsyncConnection.connect(POSTGRES_DSN, autocommit=True) as conn:
            await conn.execute(_PG_TABLE)
            async with conn.cursor() as cur:
                await cur.executemany("INSERT INTO c VALUES (%s, %s)", [(1, "a"), (2, "b")])
                await cur.execute("SELECT id, note FROM c ORDER BY id")
                rows = await cur.fetchall()
                streamed = [row async for row in cur.stream("SELECT id FROM c")]
                return rows, streamed

    return asyncio.run(main())


def psycopg_async_syntax(p: Places) -> Any:
    async def main() -> Any:
        async with await psycopg.AsyncConnection.connect(POSTGRES_DSN) as conn:
            return await conn.execute("SELEC 1")

    return asyncio.run(main())


def psycopg2_ok(p: Places) -> Any:
    conn = psycopg2.connect(**POSTGRES)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(_PG_TABLE)
            cur.executemany("INSERT INTO c VALUES (%s, %s)", [(1, "a"), (2, "b")])
            cur.execute("SELECT id, note FROM c WHERE note <> %s ORDER BY id", ("secret",))
            return cur.fetchall(), [d.name for d in cur.description], type(cur).__mro__[-2].__name__
    finally:
        conn.close()


def psycopg2_syntax(p: Places) -> Any:
    with contextlib.closing(psycopg2.connect(**POSTGRES)) as conn, conn.cursor() as cur:
        return cur.execute("SELEC 1")


def psycopg2_app_error(p: Places) -> Any:
    with contextlib.closing(psycopg2.connect(**POSTGRES)) as conn, conn.cursor() as cur:
        cur.execute(_PG_TABLE)
        return cur.executemany("INSERT INTO c VALUES (%s, %s)", _rows_then_fail((1, "a")))


def asyncpg_ok(p: Places) -> Any:
    async def main() -> Any:
        conn = await asyncpg.connect(POSTGRES_DSN)
        try:
            await conn.execute(_PG_TABLE)
            await conn.executemany("INSERT INTO c VALUES ($1, $2)", [(1, "a"), (2, "b")])
            rows = [tuple(r) for r in await conn.fetch("SELECT id, note FROM c ORDER BY id")]
            one = tuple(await conn.fetchrow("SELECT note FROM c WHERE id = $1", 2) or ())
            count = await conn.fetchval("SELECT count(*) FROM c")
            statement = await conn.prepare("SELECT id FROM c WHERE id > $1 ORDER BY id")
            prepared = [tuple(r) for r in await statement.fetch(0)]
            async with conn.transaction():
                cursor = [tuple(r) async for r in conn.cursor("SELECT id FROM c ORDER BY id")]
            return rows, one, count, prepared, cursor
        finally:
            await conn.close()

    return asyncio.run(main())


def asyncpg_syntax(p: Places) -> Any:
    async def main() -> Any:
        conn = await asyncpg.connect(POSTGRES_DSN)
        try:
            return await conn.execute("SELEC 1")
        finally:
            await conn.close()

    return asyncio.run(main())


_MY_TABLE = "CREATE TEMPORARY TABLE c (id INT PRIMARY KEY, note VARCHAR(20))"


def pymysql_ok(p: Places) -> Any:
    with contextlib.closing(pymysql.connect(**MARIADB)) as conn, conn.cursor() as cur:
        cur.execute(_MY_TABLE)
        cur.executemany("INSERT INTO c VALUES (%s, %s)", [(1, "a"), (2, "b")])
        cur.execute("SELECT id, note FROM c WHERE note <> %s ORDER BY id", ("secret",))
        return cur.fetchall(), cur.rowcount


def pymysql_syntax(p: Places) -> Any:
    with contextlib.closing(pymysql.connect(**MARIADB)) as conn, conn.cursor() as cur:
        return cur.execute("SELEC 1")


def pymysql_app_error(p: Places) -> Any:
    with contextlib.closing(pymysql.connect(**MARIADB)) as conn, conn.cursor() as cur:
        cur.execute(_MY_TABLE)
        return cur.executemany("INSERT INTO c VALUES (%s, %s)", _rows_then_fail((1, "a")))


_KEY = f"autotrace-containment:{os.getpid()}"


def redis_ok(p: Places) -> Any:
    with redis.Redis(**REDIS) as client:
        try:
            client.set(_KEY, "v", ex=60)
            got = client.get(_KEY)
            with client.pipeline() as pipe:
                pipe.set(_KEY + ":n", 1, ex=60).incr(_KEY + ":n").get(_KEY + ":n")
                piped = pipe.execute()
            return got, piped, client.execute_command("OBJECT", "ENCODING", _KEY)
        finally:
            client.delete(_KEY, _KEY + ":n")


def redis_wrong_type(p: Places) -> Any:
    with redis.Redis(**REDIS) as client:
        try:
            client.set(_KEY + ":s", "text", ex=60)
            return client.lpush(_KEY + ":s", "x")
        finally:
            client.delete(_KEY + ":s")


def redis_pipeline_error(p: Places) -> Any:
    with redis.Redis(**REDIS) as client:
        try:
            with client.pipeline(transaction=False) as pipe:
                return pipe.set(_KEY + ":p", "text", ex=60).lpush(_KEY + ":p", "x").execute()
        finally:
            client.delete(_KEY + ":p")


def redis_async_ok(p: Places) -> Any:
    async def main() -> Any:
        client = redis.asyncio.Redis(**REDIS)
        try:
            await client.set(_KEY + ":a", "v", ex=60)
            async with client.pipeline(transaction=True) as pipe:
                piped = await pipe.get(_KEY + ":a").strlen(_KEY + ":a").execute()
            return await client.get(_KEY + ":a"), piped
        finally:
            await client.delete(_KEY + ":a")
            await client.aclose()

    return asyncio.run(main())


def redis_async_wrong_type(p: Places) -> Any:
    async def main() -> Any:
        client = redis.asyncio.Redis(**REDIS)
        try:
            await client.set(_KEY + ":as", "text", ex=60)
            return await client.lpush(_KEY + ":as", "x")
        finally:
            await client.delete(_KEY + ":as")
            await client.aclose()

    return asyncio.run(main())


# Web frameworks -----------------------------------------------------------------------------------

_TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
_REQUEST_HEADERS = {"traceparent": _TRACEPARENT, "accept": "application/json", "user-agent": "containment"}


async def _item(request: Request) -> Response:
    headers = dict(request.headers)
    return JSONResponse(
        {"id": request.path_params["id"], "query": str(request.query_params), "headers": headers}
    )


async def _unavailable(request: Request) -> Response:
    return PlainTextResponse(
        "down", status_code=503, headers={"content-type": "text/plain", "retry-after": "1"}
    )


async def _boom(request: Request) -> Response:
    raise app_error("starlette endpoint")


STARLETTE = starlette.applications.Starlette(
    routes=[
        Route("/items/{id:int}", _item),
        Route("/unavailable", _unavailable),
        Mount("/api", routes=[Route("/boom", _boom)]),
    ]
)


async def _asgi_get(path: str, raise_app_exceptions: bool = True) -> httpx.Response:
    transport = httpx.ASGITransport(app=STARLETTE, raise_app_exceptions=raise_app_exceptions)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get(path, headers=_REQUEST_HEADERS)


def starlette_ok(p: Places) -> Any:
    async def main() -> Any:
        out = []
        for path in ("/items/7?token=abc&q=1", "/unavailable", "/missing", "/api/boom"):
            response = await _asgi_get(path, raise_app_exceptions=False)
            out.append((response.status_code, response.content, answered(response.headers)))
        return out

    return asyncio.run(main())


def starlette_raises(p: Places) -> Any:
    return asyncio.run(_asgi_get("/api/boom"))


FLASK = flask.Flask(__name__)


@FLASK.get("/items/<int:item>")
def _flask_item(item: int) -> Any:
    return {"id": item, "query": flask.request.query_string.decode(), "headers": dict(flask.request.headers)}


@FLASK.get("/unavailable")
def _flask_unavailable() -> Any:
    return "down", 503, {"Retry-After": "1"}


@FLASK.get("/boom")
def _flask_boom() -> Any:
    raise app_error("flask view")


def _flask_get(path: str, propagate: bool) -> Any:
    FLASK.config["PROPAGATE_EXCEPTIONS"] = propagate
    response = FLASK.test_client().get(path, headers=_REQUEST_HEADERS)
    try:
        return response.status_code, response.get_data(), answered(response.headers)
    finally:
        response.close()


def flask_ok(p: Places) -> Any:
    return [
        _flask_get(path, False) for path in ("/items/7?token=abc&q=1", "/unavailable", "/missing", "/boom")
    ]


def flask_raises(p: Places) -> Any:
    return _flask_get("/boom", True)


# --------------------------------------------------------------------------------------------------
# The cases

Op = Callable[[Places], Any]


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    instrumentations: tuple[str, ...]
    ok: Op
    fails: tuple[Op, ...]
    faults: tuple[str, ...]
    service: tuple[str, int] | None = None
    # A driver written in C raises from C: the last Python frame is whoever called it, ours when traced.
    c_driver: bool = False
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __str__(self) -> str:
        return self.name


_HTTP_CLIENT = ("http_client", "urllib", "urllib3", "requests")
_CONNECT = {"AUTOTRACE_DB_CONNECT_SPANS": "true"}  # so the connect wrappers are faulted too
_POSTGRES = ("PostgreSQL", 5432)
CASES = [
    Case("http.client", _HTTP_CLIENT, http_client_ok, (http_client_refused,), (*CLIENT, "full_url")),
    Case("urllib", _HTTP_CLIENT, urllib_ok, (urllib_refused,), (*CLIENT, "full_url")),
    Case(
        "requests", _HTTP_CLIENT, requests_ok, (requests_refused, requests_hook_raises), (*CLIENT, "full_url")
    ),
    Case("urllib3", _HTTP_CLIENT, urllib3_ok, (urllib3_refused,), (*CLIENT, "full_url")),
    Case("httpx", ("httpx",), httpx_ok, (httpx_refused, httpx_hook_raises), CLIENT),
    Case("httpx-async", ("httpx",), httpx_async_ok, (httpx_async_refused,), CLIENT),
    Case("aiohttp", ("aiohttp",), aiohttp_ok, (aiohttp_refused,), CLIENT),
    Case(
        "sqlite3", ("sqlite3",), sqlite_ok, (sqlite_syntax, sqlite_app_error), DB, c_driver=True, env=_CONNECT
    ),
    Case(
        "psycopg",
        ("psycopg",),
        psycopg_ok,
        (psycopg_syntax, psycopg_app_error),
        DB_SERVER,
        _POSTGRES,
        env=_CONNECT,
    ),
    Case(
        "psycopg-async",
        ("psycopg",),
        psycopg_async_ok,
        (psycopg_async_syntax,),
        DB_SERVER,
        _POSTGRES,
        env=_CONNECT,
    ),
    Case(
        "psycopg2",
        ("psycopg2",),
        psycopg2_ok,
        (psycopg2_syntax, psycopg2_app_error),
        DB_SERVER,
        _POSTGRES,
        c_driver=True,
        env=_CONNECT,
    ),
    Case("asyncpg", ("asyncpg",), asyncpg_ok, (asyncpg_syntax,), DB_SERVER, _POSTGRES, env=_CONNECT),
    Case(
        "pymysql",
        ("pymysql",),
        pymysql_ok,
        (pymysql_syntax, pymysql_app_error),
        DB_SERVER,
        ("MariaDB", 3306),
        env=_CONNECT,
    ),
    Case(
        "redis",
        ("redis",),
        redis_ok,
        (redis_wrong_type, redis_pipeline_error),
        (*_SPAN, "redis.command_text", "redis.pipeline_attributes", "redis.server_message", "redis.target"),
        ("Redis", 6379),
    ),
    Case(
        "redis-async",
        ("redis",),
        redis_async_ok,
        (redis_async_wrong_type,),
        (*_SPAN, "redis.command_text", "redis.pipeline_attributes", "redis.server_message", "redis.target"),
        ("Redis", 6379),
    ),
    Case(
        "starlette",
        ("starlette",),
        starlette_ok,
        (starlette_raises,),
        SERVER,
    ),
    Case(
        "flask",
        ("flask",),
        flask_ok,
        (flask_raises,),
        (*(f for f in SERVER if f != "set_route"), "web.set_route", "web.record_exception"),
    ),
]
CASES_BY_NAME = {c.name: c for c in CASES}


def _params() -> Iterator[Any]:
    for case in CASES:
        for name in case.faults:
            yield pytest.param(case, FAULTS[name], id=f"{case.name}-{name}")


# --------------------------------------------------------------------------------------------------
# Harness


@contextlib.contextmanager
def installed(names: tuple[str, ...], **env: str) -> Iterator[Recorder]:
    """The named instrumentations installed on one set of SDK objects; all uninstalled afterwards."""
    recorder = Recorder(**env)
    done = []
    try:
        for name in names:
            module = importlib.import_module(f"autotrace.instrumentation.{name}")
            importlib.import_module(module.TARGET)
            module.install(recorder.tracing, recorder.tracing.config)
            done.append(module)
        yield recorder
    finally:
        for module in reversed(done):
            module.uninstall()
        _hooks.clear()


@pytest.fixture
def lenient(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Strict mode off and the error counts (and so the log-once memory) fresh, for this test only."""
    monkeypatch.setattr(_errors, "_counts", {})
    strict = _errors.is_strict()
    _errors.set_strict(False)
    try:
        yield
    finally:
        _errors.set_strict(strict)


@dataclasses.dataclass(frozen=True)
class Outcome:
    ok: Any
    fails: tuple[Failure, ...]


_baselines: dict[tuple[str, Places], Outcome] = {}


def baseline(case: Case, places: Places) -> Outcome:
    """What the app gets with nothing installed (made once per case)."""
    key = (case.name, places)
    if key not in _baselines:
        _baselines[key] = Outcome(case.ok(places), tuple(failure(op, places) for op in case.fails))
    return _baselines[key]


def assert_same_failure(got: Failure, want: Failure, case: Case) -> None:
    assert not got.leaked, got.chain
    assert (got.kind, got.args, got.chain) == (want.kind, want.args, want.chain)
    assert got.frames == want.frames  # the library's traceback, our frames aside
    if got.last != want.last:
        # Raised by a driver written in C: its last Python frame is the one that called it, which
        # untraced is the app's and traced is our wrapper's. The frames above it are compared above.
        assert case.c_driver and ours(got.last) and want.last[0] == __file__, (got.last, want.last)
    assert got.same_object is not False  # the app's own exception came back as the same object
    assert got.same_object == want.same_object


@pytest.fixture(params=CASES, ids=str)
def case(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------------------------
# Tests


def test_traced_without_faults_changes_nothing(case: Case, places: Places) -> None:
    """The control: traced and healthy, the app gets what it gets untraced, and spans are made."""
    if case.service:
        require_service(*case.service)
    want = baseline(case, places)
    with installed(case.instrumentations, **case.env) as rec:
        got = Outcome(case.ok(places), tuple(failure(op, places) for op in case.fails))
        spans = rec.spans(kind=None)
    assert got.ok == want.ok
    for g, w in zip(got.fails, want.fails):
        assert_same_failure(g, w, case)
    assert spans


@pytest.mark.usefixtures("lenient")
@pytest.mark.parametrize(("case", "fault"), list(_params()))
def test_fault_is_contained(
    case: Case, fault: Fault, places: Places, capsys: pytest.CaptureFixture[str]
) -> None:
    if case.service:
        require_service(*case.service)
    want = baseline(case, places)
    capsys.readouterr()
    faults = Faults()
    with installed(case.instrumentations, **case.env, **fault.env) as rec, pytest.MonkeyPatch.context() as mp:
        fault.apply(mp, faults, rec)
        runs = [case.ok(places) for _ in range(2)]
        failures = [failure(op, places) for op in case.fails for _ in range(2)]
    # What the app got is what it gets untraced.
    assert runs == [want.ok, want.ok]
    for got, expected in zip(failures, [w for w in want.fails for _ in range(2)]):
        assert_same_failure(got, expected, case)
    # Every injected error was caught by a guard, reported there once: counted each time, logged once.
    assert faults.raised > 0, f"{fault} never reached {case}: not a seam of this instrumentation"
    counts = _errors.error_counts()
    assert sum(counts.values()) == faults.raised
    assert all(n >= 2 for n in counts.values()), counts
    err = capsys.readouterr().err
    for site in counts:
        assert err.count(f"internal error in {site} (") == 1, err


# Faults do not spread ------------------------------------------------------------------------------


@pytest.mark.usefixtures("lenient")
def test_a_broken_database_builder_leaves_http_spans_and_disables_nothing(places: Places) -> None:
    with installed(("sqlite3", "http_client")) as rec:
        with pytest.MonkeyPatch.context() as mp:
            faults = Faults()
            mp.setattr(_dbapi, "query_attributes", faults.function("query_attributes"))
            assert sqlite_ok(places) == baseline(CASES_BY_NAME["sqlite3"], places).ok
            assert http_client_ok(places) == baseline(CASES_BY_NAME["http.client"], places).ok
        assert faults.raised > 0 and _errors.error_counts() == {"db query": faults.raised}
        spans = rec.spans()
        # No database span, and each of the two HTTP exchanges still has its own.
        assert [s.name for s in spans] == ["GET", "POST"]
        rec.clear()
        # The fault gone, the same wrappers make database spans again: nothing was switched off.
        sqlite_ok(places)
        assert {(s.attributes or {}).get("db.system.name") for s in rec.spans()} == {"sqlite"}


@pytest.mark.usefixtures("lenient")
def test_a_fault_that_passes_costs_only_the_spans_it_hit(
    places: Places, monkeypatch: pytest.MonkeyPatch
) -> None:
    """start_span failing for one call: that call has no span, the next ones have theirs."""
    faults = Faults()
    original = sdk_trace.Tracer.start_span

    def start_span(tracer: Any, *args: Any, **kwargs: Any) -> Any:
        if faults.raised == 0:
            faults.boom("start_span")
        return original(tracer, *args, **kwargs)

    with installed(("requests", "urllib3", "http_client")) as rec:
        monkeypatch.setattr(sdk_trace.Tracer, "start_span", start_span)
        results = [requests.get(places.echo + "/echo", timeout=10).json() for _ in range(3)]
        spans = rec.spans()
    assert "traceparent" not in results[0]
    assert all("traceparent" in r for r in results[1:])
    assert len(spans) == 2 and _errors.error_counts() == {"http.client request": 1}
