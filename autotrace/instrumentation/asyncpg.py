"""asyncpg: one CLIENT span per query, never one per fetch.

Patched (written against asyncpg 0.27-0.32; read in both):

- ``Connection.execute``, ``fetch``, ``fetchrow`` and ``fetchval``: one span each, named after the
  statement (``SELECT users``). A pool's shortcuts (``pool.fetch(...)``) and the connection proxy
  that ``pool.acquire()`` hands out call these very methods, so they give one span per query too.
- ``Connection.executemany`` and ``fetchmany`` (0.30+): one span for the whole batch, with
  ``db.operation.batch.size`` when the sequence of arguments has a length of two or more (a generator
  is not counted: counting it would consume it).
- ``Connection.copy_from_table``, ``copy_to_table`` and ``copy_records_to_table`` take a table name,
  not SQL: their span records ``COPY "name" TO STDOUT`` or ``COPY "name" FROM STDIN``
  (``"schema"."name"`` with ``schema_name=``), never the columns, options or ``where=`` filter, with
  ``db.operation.name`` ``COPY`` and ``db.collection.name`` the table; it is named ``COPY name``.
  ``copy_from_query`` records ``COPY (<query>) TO STDOUT``, the query sanitized, and is named
  ``COPY``; the two queries asyncpg runs to put its arguments into the text are part of its span.
- ``Connection.prepare`` is a round trip of its own (the server parses the statement, and a bad one
  fails there): a span named ``PREPARE`` followed by the statement's summary (``PREPARE SELECT
  users``), ``db.operation.name`` ``PREPARE``. Each run of the ``PreparedStatement`` (``fetch``,
  ``fetchrow``, ``fetchval``, ``executemany``, ``fetchmany``) is one span for the statement it was
  prepared from (``get_query()``); ``explain`` records the ``EXPLAIN (FORMAT JSON, VERBOSE) ...`` it
  sends, and the ``BEGIN``/``ROLLBACK`` around ``explain(analyze=True)`` are part of its span.
- Cursors, from ``conn.cursor(query, *args)`` or ``stmt.cursor(*args)``: ``async for`` gives one span,
  made by the first step of the iteration, which prepares the statement if needed, binds the portal
  and fetches the first ``prefetch`` rows (``CursorIterator.__anext__`` while no portal is bound);
  the fetches of the next rows are not spans. ``cur = await conn.cursor(query)`` gives one span for
  preparing and binding (``Cursor._init``); ``cur.fetch(n)``, ``fetchrow()`` and ``forward(n)`` are
  not spans.
- ``asyncpg.connect`` and ``asyncpg.connection.connect`` (which pools call): a ``connect`` span only
  with ``AUTOTRACE_DB_CONNECT_SPANS=true``.

Transactions: ``conn.transaction()`` sends ``BEGIN``, ``COMMIT``, ``ROLLBACK`` and the ``SAVEPOINT``
statements of nested blocks through ``Connection.execute``. Each is a span (``BEGIN``, ``COMMIT``), as
when the app sends them itself: they are round trips, and a ``COMMIT`` can fail (a serialization
failure, a deferred constraint), which the trace then shows.

What asyncpg runs by itself is never a span that looks like the app's: the type introspection on the
first use of a type (and a JIT switch around it) and the type look-up of ``set_type_codec`` go through
asyncpg's private methods, so they are part of the span of the query that needed them or, for the codec
methods, of no span. The queries a connection may run while it opens (``target_session_attrs``
checks) and ``Connection.reset``, which a pool runs when a connection is released (``ROLLBACK`` of an
unfinished transaction, ``RESET ALL``, ``UNLISTEN *`` ...), run with the database instrumentation
standing aside: no spans, whether the pool or the app calls ``reset``. A pool's ``init``, ``setup``
and ``reset`` callbacks are the app's code, and ``add_listener``/``remove_listener`` send ``LISTEN``
and ``UNLISTEN`` for the app: their queries are spans.

Attributes: ``db.system.name`` ``postgresql``; ``db.namespace``, the database; ``server.address`` and
``server.port``, the address the connection was opened to (a unix socket's path as the address, no
port), read once per connection. The statement text is sanitized as for every database
(``AUTOTRACE_DB_STATEMENT``); query arguments are never recorded. A failed query sets the span's
status to ERROR with ``error.type`` (``asyncpg.exceptions.UniqueViolationError``), its SQLSTATE in
``db.response.status_code`` (``23505``) and an ``exception`` event; the exception reaches the app
unchanged.

``AUTOTRACE_SQLCOMMENTER=true`` appends the trace context comment to the statements of ``execute``,
``executemany``, ``fetch``, ``fetchrow``, ``fetchval`` and ``fetchmany``; not to prepared statements or
cursors (the statement is prepared once, for many runs) nor to COPY. Mind that asyncpg caches the
statements it prepares by their text: a comment that differs at every call defeats that cache, so each
of these queries (but an ``execute`` without arguments) costs the server one more parse and the client
one more round trip.
"""

from __future__ import annotations

from opentelemetry import trace

from autotrace import semconv as sc
from autotrace.instrumentation import _dbapi
from autotrace.instrumentation._installer import Installer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

    # What a traced method runs: (the connection, the statement's text, the batch size), or None.
    Query = tuple[Any, str, int | None] | None
    Describe = Callable[[Any, tuple[Any, ...], dict[str, Any]], Query]

TARGET = "asyncpg"
REQUIRES = "asyncpg >= 0.27"

_installer = Installer(__name__)


def _read_target(connection: Any) -> _dbapi.Target:
    # Private, set by Connection.__init__ (0.27-0.32): the address connected to, a (host, port) pair
    # or a unix socket's path, and the parameters it was opened with. Missing, they are left out.
    address = getattr(connection, "_addr", None)
    database = getattr(getattr(connection, "_params", None), "database", None)
    if isinstance(address, str):
        return _dbapi.Target("postgresql", namespace=database, address=address)
    if isinstance(address, tuple) and len(address) >= 2:
        return _dbapi.Target("postgresql", namespace=database, address=address[0], port=address[1])
    return _dbapi.Target("postgresql", namespace=database)


_targets = _dbapi.TargetCache(_read_target)


def install(tracing: Any, config: Any) -> None:
    import asyncpg
    from asyncpg import connection, cursor, prepared_stmt

    settings = _dbapi.settings_for(tracing)
    _installer.start()
    wrap = _installer.wrap
    query = _dbapi.query_wrapper_async(settings, _targets)
    batch = _dbapi.query_wrapper_async(settings, _targets, batch=True)
    conn = connection.Connection
    for name in ("execute", "fetch", "fetchrow", "fetchval"):
        wrap(conn, name, query)
    for name in ("executemany", "fetchmany"):
        if hasattr(conn, name):  # fetchmany: 0.30+
            wrap(conn, name, batch)
    wrap(conn, "copy_from_table", _traced(settings, _copy_table("TO STDOUT")))
    wrap(conn, "copy_to_table", _traced(settings, _copy_table("FROM STDIN")))
    wrap(conn, "copy_records_to_table", _traced(settings, _copy_table("FROM STDIN")))
    wrap(conn, "copy_from_query", _traced(settings, _copy_query))
    wrap(conn, "prepare", _traced(settings, _prepare, operation="PREPARE"))
    for name in ("reset", "_reset"):  # _reset: 0.30+, what a pool with its own reset= callback runs
        if hasattr(conn, name):
            wrap(conn, name, _quietly)
    statement = prepared_stmt.PreparedStatement
    for name in ("fetch", "fetchrow", "fetchval"):
        wrap(statement, name, _traced(settings, _prepared))
    for name in ("executemany", "fetchmany"):
        if hasattr(statement, name):  # fetchmany: 0.30+
            wrap(statement, name, _traced(settings, _prepared_batch))
    wrap(statement, "explain", _traced(settings, _explain))
    wrap(cursor.CursorIterator, "__anext__", _first_step(_traced(settings, _cursor)))
    wrap(cursor.Cursor, "_init", _traced(settings, _cursor))
    connect = _connect(settings)
    wrap(connection, "connect", connect)
    wrap(asyncpg, "connect", connect)


def uninstall() -> None:
    _installer.stop()


def _traced(settings: _dbapi.DbSettings, describe: Describe, operation: str = "") -> Callable[..., Any]:
    """A wrapper for a coroutine method whose query ``describe`` finds: one span, the mark set."""

    def begin(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return _begin(settings, describe(instance, args, kwargs), operation), args, kwargs

    return _dbapi.traced_async("asyncpg query", begin)


def _begin(settings: _dbapi.DbSettings, query: Query, operation: str) -> _dbapi.DbCall | None:
    if query is None:
        return None
    connection, text, size = query
    name, attributes = _dbapi.query_attributes(settings, _targets(connection), text, size)
    if operation:
        summary = attributes.get(sc.DB_QUERY_SUMMARY)
        name = f"{operation} {summary}" if summary else operation
        attributes[sc.DB_OPERATION_NAME] = operation
        attributes[sc.DB_QUERY_SUMMARY] = name
    return _dbapi.start(settings, name, attributes)


def _argument(args: tuple[Any, ...], kwargs: dict[str, Any], name: str) -> Any:
    """The first argument, given by position or by ``name``."""
    return args[0] if args else kwargs.get(name)


def _length(rows: Any) -> int | None:
    try:
        return len(rows)
    except TypeError:  # a generator or an async iterable: counting it would consume it
        return None


def _quote(name: str) -> str:
    # As asyncpg quotes the names it puts in the COPY statement.
    return '"' + name.replace('"', '""') + '"'


def _copy_table(direction: str) -> Describe:
    def describe(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Query:
        table = _argument(args, kwargs, "table_name")
        if not isinstance(table, str):
            return None
        schema = kwargs.get("schema_name")
        name = f"{_quote(schema)}.{_quote(table)}" if isinstance(schema, str) and schema else _quote(table)
        return instance, f"COPY {name} {direction}", None

    return describe


def _copy_query(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Query:
    query = _argument(args, kwargs, "query")
    return None if query is None else (instance, f"COPY ({_dbapi.statement_text(query)}) TO STDOUT", None)


def _prepare(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Query:
    query = _argument(args, kwargs, "query")
    return None if query is None else (instance, _dbapi.statement_text(query), None)


def _prepared(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Query:
    return instance._connection, instance.get_query(), None


def _prepared_batch(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Query:
    return instance._connection, instance.get_query(), _length(_argument(args, kwargs, "args"))


def _explain(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Query:
    options = "FORMAT JSON, VERBOSE, ANALYZE" if kwargs.get("analyze") else "FORMAT JSON, VERBOSE"
    return instance._connection, f"EXPLAIN ({options}) {instance.get_query()}", None


def _cursor(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Query:
    return instance._connection, instance._query, None


def _first_step(traced: Callable[..., Any]) -> Callable[..., Any]:
    """``CursorIterator.__anext__``, called for every row: only the step that binds the portal is traced."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        # Unbound and not exhausted: the first step. Should these names ever go, nothing is traced.
        if getattr(instance, "_portal_name", True) or getattr(instance, "_exhausted", True):
            return wrapped(*args, **kwargs)
        return traced(wrapped, instance, args, kwargs)

    return wrapper


async def _quietly(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Run asyncpg's own queries with the database wrappers standing aside (the mark, no span)."""
    if _dbapi.busy():
        return await wrapped(*args, **kwargs)
    return await _dbapi.run_async(_dbapi.DbCall(trace.INVALID_SPAN), wrapped, args, kwargs)


def _connect(settings: _dbapi.DbSettings) -> Callable[..., Any]:
    span = _dbapi.connect_wrapper_async(settings, "postgresql")

    async def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        # A pool keeps the connect function it was made with: once uninstalled, stand aside.
        if not _installer.active:
            return await wrapped(*args, **kwargs)
        if settings.connect_spans:  # the connect span's mark keeps the queries inside quiet
            return await span(wrapped, instance, args, kwargs)
        return await _quietly(wrapped, instance, args, kwargs)

    return wrapper
