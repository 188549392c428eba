"""redis-py against the real Redis, sync and asyncio: one span per command, one per pipeline."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.client
import redis.exceptions
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from autotrace import _patch
from autotrace.instrumentation import redis as traced
from tests.instrumentation.conftest import REDIS, Recorder, attributes, instrumented, require_service

SERVER = {"db.system.name": "redis", "server.address": "127.0.0.1", "server.port": 6379}


@pytest.fixture
def rec() -> Iterator[Recorder]:
    require_service("Redis", 6379)
    with instrumented("redis") as recorder:
        yield recorder


@pytest.fixture
def key() -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards, in db 0 and 1."""
    prefix = f"at{secrets.token_hex(6)}"
    yield prefix
    for db in (0, 1):
        client = redis.Redis(**REDIS, db=db)
        names = list(client.scan_iter(match=f"{prefix}*"))
        if names:
            client.delete(*names)
        client.close()


def client(db: int = 0, **options: Any) -> redis.Redis:
    # No retries: redis-py retries connection errors (AUTH's too) with a backoff of seconds.
    return redis.Redis(**REDIS, db=db, retry=Retry(NoBackoff(), 0), **options)


def async_client(db: int = 0, **options: Any) -> redis.asyncio.Redis:
    return redis.asyncio.Redis(**REDIS, db=db, retry=AsyncRetry(NoBackoff(), 0), **options)


def exported(spans: list[ReadableSpan]) -> str:
    """Everything a span would send: its name, attributes and events' attributes."""
    return repr([(s.name, attributes(s), [dict(e.attributes or {}) for e in s.events]) for s in spans])


def texts(spans: list[ReadableSpan]) -> list[Any]:
    return [attributes(s).get("db.query.text") for s in spans]


def test_each_command_is_one_span_without_keys_or_values(rec: Recorder, key: str) -> None:
    secret = "v" + secrets.token_hex(6)
    r = client()
    with rec.tracer.start_as_current_span("request") as parent:
        assert r.set(f"{key}:a", secret, ex=60) is True
        assert r.get(f"{key}:a") == secret.encode()
        r.hset(f"{key}:h", mapping={"field": secret})
        r.client_setname(f"{key}-name")
        assert r.execute_command("CLIENT", "GETNAME") == f"{key}-name".encode()
        r.execute_command(b"get", f"{key}:a")
    r.close()
    spans = rec.spans()
    assert [s.name for s in spans] == ["SET", "GET", "HSET", "CLIENT SETNAME", "CLIENT GETNAME", "GET"]
    assert texts(spans) == [
        "SET ? ? ? ?",
        "GET ?",
        "HSET ? ? ?",
        "CLIENT SETNAME ?",
        "CLIENT GETNAME",
        "GET ?",
    ]
    for span in spans:
        assert attributes(span).items() >= {**SERVER, "db.namespace": "0"}.items()
        assert attributes(span)["db.operation.name"] == span.name
        assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
        assert span.status.status_code == StatusCode.UNSET
    assert key not in exported(spans) and secret not in exported(spans)


def test_namespace_and_what_redis_py_sends_on_connect(rec: Recorder, key: str) -> None:
    # Opening the connection sends HELLO 3, CLIENT SETNAME and SELECT 1: none is a span.
    r = client(db=1, protocol=3, client_name=f"{key}-conn")
    r.set(f"{key}:one", "1")
    assert r.client_getname() == f"{key}-conn".encode()
    r.close()
    spans = rec.spans()
    assert [s.name for s in spans] == ["SET", "CLIENT GETNAME"]
    assert {attributes(s)["db.namespace"] for s in spans} == {"1"}


def test_a_unix_socket_is_the_address(rec: Recorder, tmp_path: Any) -> None:
    path = str(tmp_path / "no-redis.sock")
    r = redis.Redis(unix_socket_path=path, retry=Retry(NoBackoff(), 0))
    with pytest.raises(redis.exceptions.ConnectionError):
        r.ping()
    (span,) = rec.spans()
    assert attributes(span)["server.address"] == path
    assert "server.port" not in attributes(span)


def test_credentials_are_never_recorded(rec: Recorder) -> None:
    r = client()
    with pytest.raises(redis.exceptions.RedisError):  # no password is configured
        r.execute_command("AUTH", "user", "s3cret")
    with pytest.raises(redis.exceptions.RedisError):
        r.execute_command("HELLO", "3", "AUTH", "user", "s3cret")
    r.close()
    auth, hello = rec.spans()
    assert texts([auth, hello]) == ["AUTH", "HELLO"]
    assert auth.status.status_code == StatusCode.ERROR
    assert attributes(auth)["error.type"] == "redis.exceptions.AuthenticationError"
    assert attributes(auth)["db.response.status_code"] == "WRONGPASS"
    assert "s3cret" not in exported([auth, hello]) and "user" not in texts([auth, hello])


@pytest.mark.parametrize(("transaction", "name"), [(True, "MULTI"), (False, "PIPELINE")])
def test_a_pipeline_is_one_span(rec: Recorder, key: str, transaction: bool, name: str) -> None:
    r = client()
    with rec.tracer.start_as_current_span("request") as parent:
        pipe = r.pipeline(transaction=transaction)
        pipe.set(f"{key}:a", "secret-1").incr(f"{key}:n").get(f"{key}:a")
        assert rec.spans() == []  # queued, not sent
        assert pipe.execute() == [True, 1, b"secret-1"]
    r.close()
    (span,) = rec.spans()
    assert span.name == name
    assert attributes(span) == {
        **SERVER,
        "db.namespace": "0",
        "db.operation.name": name,
        "db.operation.batch.size": 3,
        "db.query.text": "SET ? ?\nINCRBY ? ?\nGET ?",
    }
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id


def test_pipelines_of_one_command_kind_of_one_command_and_of_none(rec: Recorder, key: str) -> None:
    r = client()
    with r.pipeline() as pipe:
        for n in range(3):
            pipe.set(f"{key}:{n}", n)
        pipe.execute()
    with r.pipeline(transaction=False) as pipe:
        pipe.get(f"{key}:0")
        assert pipe.execute() == [b"0"]
    with r.pipeline() as pipe:
        assert pipe.execute() == []  # nothing is sent: no span
    r.close()
    batch, single = rec.spans()
    assert batch.name == "BATCH SET"
    assert attributes(batch)["db.operation.batch.size"] == 3
    assert attributes(batch)["db.query.text"] == "SET ? ?\nSET ? ?\nSET ? ?"
    assert single.name == "GET" and "db.operation.batch.size" not in attributes(single)


def test_watch_runs_commands_at_once_then_the_transaction(rec: Recorder, key: str) -> None:
    r = client()
    r.set(f"{key}:n", 1)
    rec.clear()
    with r.pipeline() as pipe:
        pipe.watch(f"{key}:n")
        value = int(pipe.get(f"{key}:n"))
        pipe.multi()
        pipe.set(f"{key}:n", value + 1)
        pipe.expire(f"{key}:n", 60)
        assert pipe.execute() == [True, True]

    def bump(pipe: redis.client.Pipeline) -> None:
        pipe.get(f"{key}:n")
        pipe.multi()
        pipe.incr(f"{key}:n")

    assert r.transaction(bump, f"{key}:n") == [3]
    r.close()
    spans = rec.spans()
    assert [s.name for s in spans] == ["WATCH", "GET", "MULTI", "WATCH", "GET", "INCRBY"]
    assert texts(spans)[:3] == ["WATCH ?", "GET ?", "SET ? ?\nEXPIRE ? ?"]
    assert key not in exported(spans)


def test_a_changed_watched_key_fails_the_transaction(rec: Recorder, key: str) -> None:
    r, other = client(), client()
    with r.pipeline() as pipe:
        pipe.watch(f"{key}:w")
        other.set(f"{key}:w", "changed")
        pipe.multi()
        pipe.set(f"{key}:w", "mine")
        with pytest.raises(redis.exceptions.WatchError):
            pipe.execute()
    r.close()
    other.close()
    failed = rec.spans()[-1]
    assert failed.name == "SET" and failed.status.status_code == StatusCode.ERROR
    assert attributes(failed)["error.type"] == "redis.exceptions.WatchError"


def test_scripts_loaded_by_a_pipeline_are_part_of_its_span(rec: Recorder, key: str) -> None:
    r = client()
    script = r.register_script("return redis.call('INCR', KEYS[1])")
    r.script_flush()
    rec.clear()
    with r.pipeline() as pipe:
        script(keys=[f"{key}:s"], client=pipe)
        script(keys=[f"{key}:s"], client=pipe)
        assert pipe.execute() == [1, 2]  # SCRIPT EXISTS and SCRIPT LOAD are sent first, inside
    r.close()
    (span,) = rec.spans()
    assert (
        span.name == "BATCH EVALSHA" and attributes(span)["db.query.text"] == "EVALSHA ? ? ?\nEVALSHA ? ? ?"
    )


def test_errors_carry_the_server_code_and_no_values(rec: Recorder, key: str) -> None:
    r = client()
    r.rpush(f"{key}:list", "secret-item")
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
        r.incr(f"{key}:list")
    with pytest.raises(redis.exceptions.ResponseError, match="unknown command") as unknown:
        r.execute_command("NOSUCHCMD", f"{key}:x", "secret-arg")
    assert "secret-arg" in str(unknown.value)  # the app's exception is untouched
    with r.pipeline() as pipe:
        pipe.set(f"{key}:p", "secret-p").incr(f"{key}:list")
        with pytest.raises(redis.exceptions.ResponseError, match=r"Command # 2 \(INCRBY"):
            pipe.execute()
    r.close()
    _, wrongtype, unknown_span, pipeline = rec.spans()
    for span, code in ((wrongtype, "WRONGTYPE"), (unknown_span, "ERR"), (pipeline, "WRONGTYPE")):
        assert span.status.status_code == StatusCode.ERROR
        assert attributes(span)["error.type"] == "redis.exceptions.ResponseError"
        assert attributes(span)["db.response.status_code"] == code
        assert span.events[0].name == "exception"
    assert dict(unknown_span.events[0].attributes or {})["exception.message"] == (
        "unknown command ?, with args beginning with: ? ?"
    )
    assert dict(pipeline.events[0].attributes or {})["exception.message"] == (
        "WRONGTYPE Operation against a key holding the wrong kind of value"
    )
    spans = [wrongtype, unknown_span, pipeline]
    assert key not in exported(spans) and "secret" not in exported(spans)


def test_connection_refused_reaches_the_app(rec: Recorder) -> None:
    # Its two retries are inside the one span.
    r = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 2))
    with pytest.raises(redis.exceptions.ConnectionError):
        r.get("anything")
    (span,) = rec.spans()
    assert span.name == "GET" and span.status.status_code == StatusCode.ERROR
    assert attributes(span)["error.type"] == "redis.exceptions.ConnectionError"
    assert attributes(span)["server.port"] == 1
    assert "db.response.status_code" not in attributes(span)


def test_asyncio_commands_pipelines_and_errors(rec: Recorder, key: str) -> None:
    async def main() -> None:
        r = async_client(db=1)
        with rec.tracer.start_as_current_span("request"):
            await r.set(f"{key}:a", "secret-async", ex=60)
            assert await r.get(f"{key}:a") == b"secret-async"
            async with r.pipeline(transaction=False) as pipe:
                pipe.set(f"{key}:b", "1").set(f"{key}:c", "2")
                assert await pipe.execute() == [True, True]
            async with r.pipeline() as pipe:
                await pipe.watch(f"{key}:b")
                assert await pipe.get(f"{key}:b") == b"1"
                pipe.multi()
                pipe.incr(f"{key}:b").get(f"{key}:c")
                assert await pipe.execute() == [2, b"2"]
            await r.rpush(f"{key}:list", "x")
            with pytest.raises(redis.exceptions.ResponseError):
                await r.incr(f"{key}:list")
        await r.aclose()

    asyncio.run(main())
    spans = rec.spans()
    assert [s.name for s in spans] == ["SET", "GET", "BATCH SET", "WATCH", "GET", "MULTI", "RPUSH", "INCRBY"]
    assert texts(spans)[2] == "SET ? ?\nSET ? ?" and texts(spans)[5] == "INCRBY ? ?\nGET ?"
    assert attributes(spans[2])["db.operation.batch.size"] == 2
    assert {attributes(s)["db.namespace"] for s in spans} == {"1"}
    assert len({s.parent.span_id for s in spans if s.parent}) == 1 and all(s.parent for s in spans)
    assert attributes(spans[-1])["db.response.status_code"] == "WRONGTYPE"
    assert key not in exported(spans) and "secret" not in exported(spans)


def test_asyncio_connection_refused(rec: Recorder) -> None:
    async def main() -> None:
        r = redis.asyncio.Redis(
            host="127.0.0.1", port=1, socket_connect_timeout=1, retry=AsyncRetry(NoBackoff(), 2)
        )
        with pytest.raises(redis.exceptions.ConnectionError):
            await r.get("anything")
        await r.aclose()

    asyncio.run(main())
    (span,) = rec.spans()
    assert span.status.status_code == StatusCode.ERROR
    assert attributes(span)["error.type"] == "redis.exceptions.ConnectionError"


def test_statement_off(key: str) -> None:
    require_service("Redis", 6379)
    with instrumented("redis", AUTOTRACE_DB_STATEMENT="off") as rec:
        r = client()
        r.set(f"{key}:a", "1")
        with r.pipeline() as pipe:
            pipe.get(f"{key}:a").get(f"{key}:a")
            pipe.execute()
        r.close()
    assert [s.name for s in rec.spans()] == ["SET", "BATCH GET"]
    assert texts(rec.spans()) == [None, None]


def test_statement_raw_keeps_arguments_but_never_credentials(key: str) -> None:
    require_service("Redis", 6379)
    with instrumented("redis", AUTOTRACE_DB_STATEMENT="raw") as rec:
        r = client()
        r.set(f"{key}:a", "plain", ex=60)
        r.set(f"{key}:big", b"x" * 5000)
        with pytest.raises(redis.exceptions.RedisError):
            r.execute_command("AUTH", "user", "s3cret")
        with pytest.raises(redis.exceptions.ResponseError):
            r.execute_command("CONFIG", "SET", "requirepass-not-a-parameter", "s3cret")
        with r.pipeline() as pipe:
            pipe.get(f"{key}:a").execute_command("AUTH", "s3cret")
            with pytest.raises(redis.exceptions.RedisError):
                pipe.execute()
        r.close()
    spans = rec.spans()
    plain, big, auth, config, pipeline = texts(spans)
    assert plain == f"SET {key}:a plain EX 60"
    assert big.startswith(f"SET {key}:big xxx") and len(big) == 1000
    assert (auth, config) == ("AUTH", "CONFIG SET ? ?")
    assert pipeline == f"GET {key}:a\nAUTH"
    assert "s3cret" not in exported(spans)


def test_uninstall_restores_the_methods() -> None:
    require_service("Redis", 6379)
    sync, aio = redis.client, redis.asyncio.client
    patched = [(sync.Redis, "execute_command"), (aio.Redis, "execute_command")]
    for pipeline in (sync.Pipeline, aio.Pipeline):
        patched += [(pipeline, "immediate_execute_command"), (pipeline, "execute")]
    originals = [cls.__dict__[name] for cls, name in patched]
    with instrumented("redis") as rec:
        assert all(_patch.is_wrapped_by(cls.__dict__[name], traced.__name__) for cls, name in patched)
    assert [cls.__dict__[name] for cls, name in patched] == originals
    r = client()
    r.ping()
    with r.pipeline() as pipe:
        pipe.ping().ping()
        pipe.execute()
    r.close()
    asyncio.run(_ping_async())
    assert rec.spans() == []


async def _ping_async() -> None:
    r = async_client()
    await r.ping()
    await r.aclose()


def test_command_names_and_texts() -> None:
    assert traced.command_name(("CLIENT SETNAME", "x")) == ("CLIENT SETNAME", 1)
    assert traced.command_name((b"config", b"get", b"maxmemory")) == ("CONFIG GET", 2)
    assert traced.command_name(("CONFIG", "not a word")) == ("CONFIG", 1)
    assert traced.command_name(("get", "CLIENT")) == ("GET", 1)
    assert traced.command_text("sanitized", "MSET", ("MSET",) + ("k",) * 2000, 1) == "MSET" + " ?" * 498
    assert traced.command_text("raw", "HELLO", ("HELLO", "3", "AUTH", "u", "p"), 1) == "HELLO"
    assert traced.command_text("raw", "SET", ("SET", b"k", memoryview(b"v"), 5, 1.5), 1) == "SET k v 5 1.5"
    assert traced.command_text("raw", "ACL SETUSER", ("ACL SETUSER", "u", ">pw"), 1) == "ACL SETUSER ? ?"
    name, attrs = traced.pipeline_attributes("sanitized", [("SET", "k", "v")] * 600, transaction=True)
    assert name == "BATCH SET" and attrs["db.operation.batch.size"] == 600
    assert len(attrs["db.query.text"]) <= 1000 and attrs["db.query.text"].startswith("SET ? ?\nSET ? ?\n")


def test_response_codes() -> None:
    error = redis.exceptions.ResponseError
    assert traced.response_code(error("x", status_code="ERR"), "x") == "ERR"
    assert traced.response_code(error("BUSYKEY Target"), "BUSYKEY Target") == "BUSYKEY"
    assert traced.response_code(error("Wrong number"), "Wrong number") is None
    assert traced.response_code(redis.exceptions.DataError("NOPE x"), "NOPE x") is None
    annotated = error("Command # 1 (SET k v) of pipeline caused error: OOM x\nmore")
    assert traced.server_message(annotated) == "OOM x"
