"""psycopg2: one CLIENT span per ``execute``, ``executemany`` or ``copy_expert``, never one per fetch.

psycopg2's connection and cursor are C types, which cannot be patched, and a proxy would break the
functions that insist on the real thing (``register_type``, ``extras.execute_values``, ``register_uuid``
...). Patched instead (written against psycopg2 2.8-2.9): ``psycopg2.connect``, which then builds the
connection as a subclass of the class the app asked for (``connection_factory=``, default
``psycopg2.extensions.connection``, ``extras.DictConnection`` and other subclasses too). Its cursors are
subclasses of the cursor class asked for (``cursor_factory=`` on the call or the connection,
``extras.RealDictCursor`` and the like, named cursors included) whose ``execute``, ``executemany`` and
``copy_expert`` make the span. The app holds real psycopg2 objects: ``isinstance`` holds and every
extension function accepts them.

``psycopg2.extras.execute_values`` and ``execute_batch`` run through ``execute``: one span per page they
send. A named (server-side) cursor's span covers its ``DECLARE``; the fetches that follow are not spans.
``copy_from`` and ``copy_to`` (a table, not a statement) and ``callproc`` are not traced. A
``connection_factory`` or ``cursor_factory`` that is not a class (any callable is allowed) is left
untraced.

Attributes: ``db.system.name`` ``postgresql``, ``db.namespace``, ``server.address``, ``server.port``
from ``connection.info``; a failed query records its SQLSTATE (``pgcode``) in
``db.response.status_code``.
"""

from __future__ import annotations

import contextlib

from autotrace import _errors
from autotrace.instrumentation import _dbapi
from autotrace.instrumentation._installer import Installer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

TARGET = "psycopg2"
REQUIRES = "psycopg2|psycopg2-binary >= 2.8"

_installer = Installer(__name__)
_connections: dict[type, type] = {}
_cursors: dict[type, type] = {}
# The current wrappers by method name: the traced classes look them up at each call.
_wrappers: dict[str, Callable[..., Any]] = {}


_targets = _dbapi.TargetCache(_dbapi.postgres_target)


def _target_of(cursor: Any) -> _dbapi.Target:
    return _targets(cursor.connection)


def install(tracing: Any, config: Any) -> None:
    import psycopg2

    settings = _dbapi.settings_for(tracing)
    query = _dbapi.query_wrapper(settings, _target_of)
    _wrappers.update(
        execute=query,
        executemany=_dbapi.query_wrapper(settings, _target_of, batch=True),
        copy_expert=query,
        connect=_dbapi.connect_wrapper(settings, "postgresql"),
    )
    _installer.start()
    _installer.wrap(psycopg2, "connect", _connect)


def uninstall() -> None:
    _wrappers.clear()  # connections and cursors already handed out stop tracing too
    _installer.stop()


def _connect(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    with _errors.guard("psycopg2 connect"):
        import psycopg2.extensions

        factory = kwargs.get("connection_factory", args[1] if len(args) > 1 else None)
        factory = factory or psycopg2.extensions.connection
        if isinstance(factory, type) and issubclass(factory, psycopg2.extensions.connection):
            traced = _dbapi.traced_subclass(factory, {"cursor": _cursor}, _connections)
            if len(args) > 1:
                args = (args[0], traced, *args[2:])
            else:
                kwargs = {**kwargs, "connection_factory": traced}
    span = _wrappers.get("connect")
    return wrapped(*args, **kwargs) if span is None else span(wrapped, instance, args, kwargs)


def _cursor(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``connection.cursor(name=None, cursor_factory=None, ...)``: the cursor class asked for, traced."""
    if not _wrappers:
        return wrapped(*args, **kwargs)
    with _errors.guard("psycopg2 cursor"):
        args, kwargs, late = _traced_factory(instance, args, kwargs)
    cursor = wrapped(*args, **kwargs)
    if late:
        with _errors.guard("psycopg2 cursor"):
            _retype(cursor)
    return cursor


def _traced_factory(
    connection: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any], bool]:
    """The arguments with the cursor factory replaced by its traced subclass; True when the factory
    is chosen further down (a connection class's own ``cursor()``) and the cursor is retyped after."""
    import psycopg2.extensions

    base = psycopg2.extensions.connection
    where: int | str
    if len(args) > 1:
        factory, where = args[1], 1
    elif kwargs.get("cursor_factory") is not None:
        factory, where = kwargs["cursor_factory"], "cursor_factory"
    elif connection.cursor_factory is not None:
        factory, where = connection.cursor_factory, "cursor_factory"
    elif getattr(type(connection).__mro__[1], "cursor", None) is base.cursor:
        factory, where = psycopg2.extensions.cursor, "cursor_factory"
    else:
        return args, kwargs, True
    if not (isinstance(factory, type) and issubclass(factory, psycopg2.extensions.cursor)):
        return args, kwargs, False
    traced = _dbapi.traced_subclass(factory, _CURSOR_WRAPPERS, _cursors)
    if where == 1:
        return (args[0], traced, *args[2:]), kwargs, False
    return args, {**kwargs, "cursor_factory": traced}, False


def _retype(cursor: Any) -> None:
    """Give a cursor made by a connection class's own ``cursor()`` its traced class (Python cursor
    classes only: the class of a built-in one cannot change, and it then stays untraced)."""
    cls = type(cursor)
    if getattr(cls, _dbapi.TRACED_MARK, False):
        return
    with contextlib.suppress(TypeError):
        cursor.__class__ = _dbapi.traced_subclass(cls, _CURSOR_WRAPPERS, _cursors)


_CURSOR_WRAPPERS = {
    name: _dbapi.dispatch(_wrappers, name) for name in ("execute", "executemany", "copy_expert")
}
