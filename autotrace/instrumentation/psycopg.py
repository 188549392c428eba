"""psycopg 3, sync and async: one CLIENT span per query, never one per fetch.

Patched (written against psycopg 3.1-3.3): ``Cursor.execute``, ``Cursor.executemany`` (one span for the
whole batch, ``db.operation.batch.size``), ``Cursor.stream`` (the span lasts until the rows are
exhausted or the iterator is closed), ``Cursor.copy`` (the span lasts for the ``with`` block), and
``ServerCursor.execute`` (a named, server-side cursor: the span covers declaring it; the fetches that
follow are not spans), with their ``Async*`` twins. ``ClientCursor`` and ``RawCursor`` inherit them, and
``Connection.execute`` goes through ``Cursor.execute``, so it gives one span too. Connection pools
(psycopg_pool) hand out ordinary connections: nothing more is needed. ``Connection.connect`` gets a
span only with ``AUTOTRACE_DB_CONNECT_SPANS=true``.

Pipeline mode: ``execute`` only queues the query and returns; its span times the queueing, not the
server's work, which is waited for at the pipeline's sync. Transactions started by
``conn.transaction()`` send ``BEGIN``/``COMMIT`` through psycopg's internals: they are not spans.

Attributes: ``db.system.name`` ``postgresql``, ``db.namespace`` (the database), ``server.address`` and
``server.port`` from ``connection.info``; a failed query records its SQLSTATE in
``db.response.status_code``. Queries composed with ``psycopg.sql`` are recorded as the text they compose
to, sanitized like any other.
"""

from __future__ import annotations

import contextlib

from autotrace import _errors
from autotrace.instrumentation import _dbapi
from autotrace.instrumentation._installer import Installer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from typing import Any, Callable

TARGET = "psycopg"
REQUIRES = "psycopg >= 3.1"

_installer = Installer(__name__)


_targets = _dbapi.TargetCache(_dbapi.postgres_target)


def _target_of(cursor: Any) -> _dbapi.Target:
    return _targets(cursor.connection)


def install(tracing: Any, config: Any) -> None:
    import psycopg

    settings = _dbapi.settings_for(tracing)
    query = _dbapi.query_wrapper(settings, _target_of)
    query_async = _dbapi.query_wrapper_async(settings, _target_of)
    _installer.start()
    wrap = _installer.wrap
    wrap(psycopg.Cursor, "execute", query)
    wrap(psycopg.Cursor, "executemany", _dbapi.query_wrapper(settings, _target_of, batch=True))
    wrap(psycopg.Cursor, "stream", _stream(settings))
    wrap(psycopg.Cursor, "copy", _copy(settings))
    wrap(psycopg.ServerCursor, "execute", query)
    wrap(psycopg.AsyncCursor, "execute", query_async)
    wrap(psycopg.AsyncCursor, "executemany", _dbapi.query_wrapper_async(settings, _target_of, batch=True))
    wrap(psycopg.AsyncCursor, "stream", _stream_async(settings))
    wrap(psycopg.AsyncCursor, "copy", _copy_async(settings))
    wrap(psycopg.AsyncServerCursor, "execute", query_async)
    wrap(psycopg.Connection, "connect", _dbapi.connect_wrapper(settings, "postgresql"))
    wrap(psycopg, "connect", _dbapi.connect_wrapper(settings, "postgresql"))
    wrap(psycopg.AsyncConnection, "connect", _dbapi.connect_wrapper_async(settings, "postgresql"))


def uninstall() -> None:
    _installer.stop()


def _begin(
    settings: _dbapi.DbSettings, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[_dbapi.DbCall | None, tuple[Any, ...], dict[str, Any]]:
    if _dbapi.busy():
        return None, args, kwargs
    with _errors.guard("psycopg query"):
        return _dbapi.begin_query(settings, _target_of, instance, args, kwargs)
    return None, args, kwargs


def _stream(settings: _dbapi.DbSettings) -> Callable[..., Any]:
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Iterator[Any]:
        call, args, kwargs = _begin(settings, instance, args, kwargs)
        if call is None:
            rows: Iterator[Any] = wrapped(*args, **kwargs)
            return rows
        return _dbapi.iterate(call, _dbapi.call_or_finish(call, wrapped, args, kwargs))

    return wrapper


def _stream_async(settings: _dbapi.DbSettings) -> Callable[..., Any]:
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> AsyncIterator[Any]:
        call, args, kwargs = _begin(settings, instance, args, kwargs)
        if call is None:
            rows: AsyncIterator[Any] = wrapped(*args, **kwargs)
            return rows
        return _dbapi.iterate_async(call, _dbapi.call_or_finish(call, wrapped, args, kwargs))

    return wrapper


def _copy(settings: _dbapi.DbSettings) -> Callable[..., Any]:
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        call, args, kwargs = _begin(settings, instance, args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        return _copy_block(call, _dbapi.call_or_finish(call, wrapped, args, kwargs))

    return wrapper


@contextlib.contextmanager
def _copy_block(call: _dbapi.DbCall, manager: Any) -> Iterator[Any]:
    try:
        with manager as copy:
            yield copy
    except BaseException as exc:
        call.finish(exc)
        raise
    finally:
        call.finish()


def _copy_async(settings: _dbapi.DbSettings) -> Callable[..., Any]:
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        call, args, kwargs = _begin(settings, instance, args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        return _copy_block_async(call, _dbapi.call_or_finish(call, wrapped, args, kwargs))

    return wrapper


@contextlib.asynccontextmanager
async def _copy_block_async(call: _dbapi.DbCall, manager: Any) -> AsyncIterator[Any]:
    try:
        async with manager as copy:
            yield copy
    except BaseException as exc:
        call.finish(exc)
        raise
    finally:
        call.finish()
