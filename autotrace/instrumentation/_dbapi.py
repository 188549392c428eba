"""What every database and cache span shares, whichever driver runs the query.

One query, one CLIENT span: the wrapper that makes a span marks the context for the duration of the
call, and any driver method it calls underneath (``Connection.execute`` → ``Cursor.execute``,
``executemany`` → ``execute``) finds the mark and stands aside. Fetching rows is never a span of its
own. The exporter's own work runs with instrumentation suppressed and gets nothing.

Attributes follow the stable database conventions: ``db.system.name``, ``db.namespace``,
``server.address``/``server.port`` (from the connection, read once per connection), ``db.query.text``
(sanitized by default: see ``autotrace.sql``; ``AUTOTRACE_DB_STATEMENT=raw|sanitized|off``),
``db.operation.name``, ``db.collection.name`` and ``db.query.summary`` read from the sanitized text,
``db.operation.batch.size`` for batches of two or more, and on failure ``error.type``,
``db.response.status_code`` (SQLSTATE for PostgreSQL, the error number for MySQL/MariaDB, the error
name for SQLite) and an ``exception`` event. Parameters are never recorded. The span name is the
summary (``SELECT users``), or the system name when the statement says nothing readable.

A driver module supplies only what differs: which methods to wrap and how to read the connection.
"""

from __future__ import annotations

import weakref

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from autotrace import _errors, sql
from autotrace import semconv as sc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from typing import Any, Callable

    TargetOf = Callable[[Any], "Target"]

_ACTIVE_KEY = otel_context.create_key("autotrace-db-call")
_SUPPRESS_KEY = otel_context._SUPPRESS_INSTRUMENTATION_KEY
_STATEMENT_NAMES = ("query", "sql", "operation", "statement", "command")


class DbSettings:
    """What database spans need, made once per SDK set-up."""

    __slots__ = ("_tracing", "commenter", "connect_spans", "statement", "tracer")

    def __init__(self, tracing: Any) -> None:
        db = tracing.config.db
        # Kept alive with its settings: they are found by ``id(tracing)``, which a Tracing made later
        # would otherwise be able to reuse, and get these (another provider, another config).
        self._tracing = tracing
        self.tracer: trace.Tracer = tracing.tracer("db")
        self.statement: str = db.statement
        self.commenter: bool = db.sqlcommenter
        self.connect_spans: bool = db.connect_spans


_settings: dict[int, DbSettings] = {}


def settings_for(tracing: Any) -> DbSettings:
    found = _settings.get(id(tracing))
    if found is None:
        found = _settings[id(tracing)] = DbSettings(tracing)
    return found


class Target:
    """Where a connection points: the attributes every span on it starts with."""

    __slots__ = ("attributes", "mysql", "system")

    def __init__(
        self,
        system: str,
        namespace: str | None = None,
        address: str | None = None,
        port: int | None = None,
        mysql: bool = False,
    ) -> None:
        self.system = system
        self.mysql = mysql
        attributes: dict[str, Any] = {sc.DB_SYSTEM_NAME: system}
        if namespace:
            attributes[sc.DB_NAMESPACE] = str(namespace)
        if address:
            attributes[sc.SERVER_ADDRESS] = str(address)
        if port:
            attributes[sc.SERVER_PORT] = int(port)
        self.attributes = attributes


def postgres_target(connection: Any) -> Target:
    """A PostgreSQL connection's target from libpq's ``connection.info`` (psycopg and psycopg2)."""
    info = connection.info
    return Target("postgresql", namespace=info.dbname, address=info.host, port=info.port)


class TargetCache:
    """Targets by connection, read once per connection and forgotten with it."""

    def __init__(self, build: Callable[[Any], Target]) -> None:
        self._build = build
        self._known: weakref.WeakKeyDictionary[Any, Target] = weakref.WeakKeyDictionary()

    def __call__(self, connection: Any) -> Target:
        try:
            return self._known[connection]
        except KeyError:
            pass
        except TypeError:  # not weakly referenceable: read it every time
            return self._build(connection)
        target = self._known[connection] = self._build(connection)
        return target


def busy() -> bool:
    """Whether a span already covers this call (a method above made it) or tracing is suppressed."""
    return otel_context.get_value(_ACTIVE_KEY) is not None or bool(otel_context.get_value(_SUPPRESS_KEY))


def statement_text(statement: Any, context: Any = None) -> str:
    """The text of a statement given as str, bytes or a composed query object (psycopg's ``sql``)."""
    if isinstance(statement, str):
        return statement
    if isinstance(statement, (bytes, bytearray, memoryview)):
        return bytes(statement[: sql.MAX_SCANNED * 4]).decode("utf-8", "replace")
    as_string = getattr(statement, "as_string", None)
    if as_string is not None:
        return str(as_string(context))
    return str(statement)


def query_attributes(
    settings: DbSettings, target: Target, text: str, batch_size: int | None = None
) -> tuple[str, dict[str, Any]]:
    """The span name and attributes of one query (or one batch of the same query)."""
    sanitized = sql.sanitize(text, target.mysql)
    operation, table, summary = sql.summarize(sanitized)
    attributes = dict(target.attributes)
    mode = settings.statement
    if mode == "sanitized":
        attributes[sc.DB_QUERY_TEXT] = sanitized
    elif mode == "raw":
        attributes[sc.DB_QUERY_TEXT] = text
    if batch_size is not None and batch_size != 1:
        attributes[sc.DB_OPERATION_BATCH_SIZE] = batch_size
        operation = f"BATCH {operation}" if operation else "BATCH"
        summary = f"BATCH {summary}" if summary else "BATCH"
    if operation:
        attributes[sc.DB_OPERATION_NAME] = operation
    if table:
        attributes[sc.DB_COLLECTION_NAME] = table
    if summary:
        attributes[sc.DB_QUERY_SUMMARY] = summary
    return summary or target.system, attributes


class DbCall:
    """One query's span. Methods never raise."""

    __slots__ = ("ended", "raw", "span")

    def __init__(self, span: trace.Span, raw: bool = False) -> None:
        self.span = span
        self.raw = raw  # the user asked for statements as they are: error messages too
        self.ended = False

    def context(self) -> Any:
        return otel_context.set_value(_ACTIVE_KEY, self)

    def finish(self, exc: BaseException | None = None) -> None:
        """End the span, with ``exc`` recorded. Often called while ``exc`` is being handled: an error
        of ours escaping here would be chained onto the app's exception, or replace it."""
        if self.ended:
            return
        self.ended = True
        span = self.span
        if exc is not None and isinstance(exc, Exception):
            with _errors.guard("db exception"):
                if span.is_recording():
                    self._record(span, exc)
        with _errors.guard("db span end"):  # span processors run in end(): never trust them
            span.end()

    def _record(self, span: trace.Span, exc: Exception) -> None:
        span.record_exception(exc, attributes=None if self.raw else safe_exception(exc), escaped=True)
        span.set_attribute(sc.ERROR_TYPE, qualified_name(type(exc)))
        code = response_code(exc)
        if code:
            span.set_attribute(sc.DB_RESPONSE_STATUS_CODE, code)
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


def start(settings: DbSettings, name: str, attributes: dict[str, Any]) -> DbCall:
    span = settings.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
    return DbCall(span, raw=settings.statement == "raw")


def safe_exception(exc: BaseException) -> dict[str, str]:
    """The ``exception`` event's message and stack without the values a database error quotes.

    Servers put data in their messages (``Key (email)=(a@b.c) already exists``, ``Duplicate entry
    'x'``, ``invalid input syntax for type integer: "abc"``): keep the first line, with quoted parts
    and numbers replaced by ``?`` as in a statement, and the frames, not the message, of the stack.
    """
    import traceback

    args = exc.args
    # MySQL drivers raise (errno, message): the message is the part to keep.
    text = str(args[1] if len(args) == 2 and isinstance(args[0], int) else exc).strip()
    first = text.splitlines()[0] if text else ""
    message = sql.sanitize(first[:1000], mysql=True)
    head = f"{qualified_name(type(exc))}: {message}" if message else qualified_name(type(exc))
    frames = "".join(traceback.format_tb(exc.__traceback__))
    return {
        "exception.message": message,
        "exception.stacktrace": f"Traceback (most recent call last):\n{frames}{head}\n",
    }


def qualified_name(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"


def response_code(exc: BaseException) -> str | None:
    """The database's own code for an error: MySQL's error number (its drivers raise (errno,
    message)), SQLSTATE for PostgreSQL, SQLite's error name."""
    args: tuple[Any, ...] = getattr(exc, "args", ())
    if len(args) == 2 and isinstance(args[0], int) and not isinstance(args[0], bool):
        return str(args[0])
    for name in ("sqlstate", "pgcode", "sqlite_errorname"):
        value = getattr(exc, name, None)
        if value:
            return str(value)
    return None


def traceparent_comment(span: trace.Span) -> str:
    """The SQL comment that carries the span's context (sqlcommenter's format), or ''."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return ""
    from urllib.parse import quote

    parts = [f"traceparent='{quote(f'00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}')}'"]
    if ctx.trace_state:
        parts.append(f"tracestate='{quote(ctx.trace_state.to_header(), safe='')}'")
    return "/*" + ",".join(parts) + "*/"


def with_comment(statement: Any, comment: str) -> Any:
    """``statement`` with ``comment`` appended before any final ``;`` (str and bytes only)."""
    if not comment:
        return statement
    if isinstance(statement, str):
        body = statement.rstrip()
        end = ";" if body.endswith(";") else ""
        return f"{body[: len(body) - len(end)]} {comment}{end}"
    if isinstance(statement, bytes):
        return with_comment(statement.decode("utf-8", "surrogateescape"), comment).encode(
            "utf-8", "surrogateescape"
        )
    return statement


def _locate(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, int | str | None]:
    if args:
        return args[0], 0
    for name in _STATEMENT_NAMES:
        if name in kwargs:
            return kwargs[name], name
    return None, None


def _replace(
    args: tuple[Any, ...], kwargs: dict[str, Any], where: int | str | None, value: Any
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if where == 0:
        return (value, *args[1:]), kwargs
    if isinstance(where, str):
        return args, {**kwargs, where: value}
    return args, kwargs


def _batch_size(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int | None:
    rows = (
        args[1] if len(args) > 1 else next((v for k, v in kwargs.items() if k not in _STATEMENT_NAMES), None)
    )
    try:
        return len(rows)  # type: ignore[arg-type]
    except TypeError:  # a generator: counting it would consume it
        return None


def begin_query(
    settings: DbSettings,
    target_of: TargetOf,
    instance: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    batch: bool = False,
) -> tuple[DbCall | None, tuple[Any, ...], dict[str, Any]]:
    """Start the span of the query in ``args``/``kwargs``; with the SQL comment added if configured."""
    statement, where = _locate(args, kwargs)
    if statement is None:
        return None, args, kwargs
    target = target_of(instance)
    size = _batch_size(args, kwargs) if batch else None
    name, attributes = query_attributes(settings, target, statement_text(statement, instance), size)
    call = start(settings, name, attributes)
    if settings.commenter and target.system != "redis":
        args, kwargs = _replace(args, kwargs, where, with_comment(statement, traceparent_comment(call.span)))
    return call, args, kwargs


def traced(site: str, begin: Callable[..., Any]) -> Callable[..., Any]:
    """The four steps every database wrapper takes, for a plain method: out at once when a span
    already covers the call; ``begin(instance, args, kwargs)`` (guarded) starts the span and may
    rewrite the arguments; the driver's call runs outside the guard; the span ends with its outcome."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if busy():
            return wrapped(*args, **kwargs)
        call = None
        with _errors.guard(site):
            call, args, kwargs = begin(instance, args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        return run(call, wrapped, args, kwargs)

    return wrapper


def traced_async(site: str, begin: Callable[..., Any]) -> Callable[..., Any]:
    """``traced`` for a coroutine method: the mark is set in the awaiting task."""

    async def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if busy():
            return await wrapped(*args, **kwargs)
        call = None
        with _errors.guard(site):
            call, args, kwargs = begin(instance, args, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        return await run_async(call, wrapped, args, kwargs)

    return wrapper


def _query_begin(settings: DbSettings, target_of: TargetOf, batch: bool) -> Callable[..., Any]:
    return lambda instance, args, kwargs: begin_query(settings, target_of, instance, args, kwargs, batch)


def query_wrapper(settings: DbSettings, target_of: TargetOf, batch: bool = False) -> Callable[..., Any]:
    """A wrapper for a driver method whose first argument is the statement."""
    return traced("db query", _query_begin(settings, target_of, batch))


def query_wrapper_async(settings: DbSettings, target_of: TargetOf, batch: bool = False) -> Callable[..., Any]:
    """``query_wrapper`` for a coroutine method."""
    return traced_async("db query", _query_begin(settings, target_of, batch))


def run(call: DbCall, wrapped: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run the driver's call under ``call``'s mark; end the span with its outcome."""
    token = otel_context.attach(call.context())
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        call.finish(exc)
        raise
    finally:
        otel_context.detach(token)
    call.finish()
    return result


async def run_async(
    call: DbCall, wrapped: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    token = otel_context.attach(call.context())
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        call.finish(exc)
        raise
    finally:
        otel_context.detach(token)
    call.finish()
    return result


def call_or_finish(
    call: DbCall, wrapped: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """The driver's call for a span that outlives it (rows streamed, a COPY block): should the call
    itself fail, the span ends with that failure rather than never."""
    try:
        return wrapped(*args, **kwargs)
    except BaseException as exc:
        call.finish(exc)
        raise


def iterate(call: DbCall, rows: Iterator[Any]) -> Iterator[Any]:
    """Rows of a streamed query; the span ends when they are exhausted, fail, or are closed."""
    try:
        yield from rows
    except BaseException as exc:
        call.finish(exc)
        raise
    finally:
        call.finish()


async def iterate_async(call: DbCall, rows: AsyncIterator[Any]) -> AsyncIterator[Any]:
    try:
        async for row in rows:
            yield row
    except BaseException as exc:
        call.finish(exc)
        raise
    finally:
        call.finish()


def _connect_begin(settings: DbSettings, system: str) -> Callable[..., Any]:
    attributes = {sc.DB_SYSTEM_NAME: system, sc.DB_OPERATION_NAME: "connect"}

    def begin(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = start(settings, "connect", attributes) if settings.connect_spans else None
        return call, args, kwargs

    return begin


def connect_wrapper(settings: DbSettings, system: str) -> Callable[..., Any]:
    """A span for opening a connection (only with ``AUTOTRACE_DB_CONNECT_SPANS=true``)."""
    return traced("db connect", _connect_begin(settings, system))


def connect_wrapper_async(settings: DbSettings, system: str) -> Callable[..., Any]:
    return traced_async("db connect", _connect_begin(settings, system))


TRACED_MARK = "__autotrace_traced__"


def traced_subclass(base: type, wrappers: dict[str, Callable[..., Any]], cache: dict[type, type]) -> type:
    """A subclass of ``base`` whose methods named in ``wrappers`` run through them.

    For drivers written in C (sqlite3, psycopg2), whose connection and cursor types cannot be patched:
    the app gets an instance of this subclass, so it is still a real connection or cursor of the
    driver (``isinstance`` holds, the driver's own functions accept it), never a proxy. One subclass
    per base class, made once.
    """
    if getattr(base, TRACED_MARK, False):
        return base
    found = cache.get(base)
    if found is not None:
        return found
    namespace: dict[str, Any] = {TRACED_MARK: True, "__module__": base.__module__, "__slots__": ()}
    for name, wrapper in wrappers.items():
        namespace[name] = _method(getattr(base, name), wrapper)
    cls = type(base.__name__, (base,), namespace)
    cls.__qualname__ = base.__qualname__
    cache[base] = cls
    return cls


def _method(original: Callable[..., Any], wrapper: Callable[..., Any]) -> Callable[..., Any]:
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return wrapper(original.__get__(self, type(self)), self, args, kwargs)

    method.__name__ = getattr(original, "__name__", "method")
    method.__doc__ = getattr(original, "__doc__", None)
    return method


def dispatch(wrappers: dict[str, Callable[..., Any]], name: str) -> Callable[..., Any]:
    """A wrapper that runs the current ``wrappers[name]``, or the bare call once uninstalled."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        current = wrappers.get(name)
        if current is None:
            return wrapped(*args, **kwargs)
        return current(wrapped, instance, args, kwargs)

    return wrapper
