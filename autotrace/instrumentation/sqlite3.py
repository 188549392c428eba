"""sqlite3 (the standard library): one CLIENT span per ``execute``, ``executemany`` or ``executescript``.

sqlite3's connection and cursor are C types, which cannot be patched. Patched instead:
``sqlite3.connect`` (3.9-3.13), which then opens the connection as a subclass of the class the app
asked for (``factory=``, default ``sqlite3.Connection``); that subclass's cursors are subclasses of the
cursor class asked for (``cursor(factory=...)``, default ``sqlite3.Cursor``) whose ``execute``,
``executemany`` and ``executescript`` make the span. The app still holds a real sqlite3 connection
(``isinstance`` holds, ``row_factory``, ``backup``, ``create_function`` work), never a proxy. The
connection shortcuts (``Connection.execute`` ...) go through a traced cursor, as sqlite3's own do
through a plain one. Fetching rows is not a span.

``db.system.name`` is ``sqlite``; a failed statement records SQLite's error name (Python 3.11+:
``SQLITE_CONSTRAINT_UNIQUE``) in ``db.response.status_code``. A cursor factory that is not a class
(any callable is allowed) gets untraced cursors.
"""

from __future__ import annotations

from autotrace import _errors
from autotrace.instrumentation import _dbapi
from autotrace.instrumentation._installer import Installer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

TARGET = "sqlite3"
REQUIRES = None

_installer = Installer(__name__)
_TARGET = _dbapi.Target("sqlite")
_connections: dict[type, type] = {}
_cursors: dict[type, type] = {}
# The current wrappers by method name: the traced classes look them up at each call.
_wrappers: dict[str, Callable[..., Any]] = {}


def install(tracing: Any, config: Any) -> None:
    import sqlite3
    import sqlite3.dbapi2

    settings = _dbapi.settings_for(tracing)
    query = _dbapi.query_wrapper(settings, _target_of)
    batch = _dbapi.query_wrapper(settings, _target_of, batch=True)
    _wrappers.update(execute=query, executemany=batch, executescript=query)
    _installer.start()
    for module in (sqlite3, sqlite3.dbapi2):
        _installer.wrap(module, "connect", _connect(settings))


def uninstall() -> None:
    _wrappers.clear()  # connections and cursors already handed out stop tracing too
    _installer.stop()


def _target_of(cursor: Any) -> _dbapi.Target:
    return _TARGET


def _connect(settings: _dbapi.DbSettings) -> Callable[..., Any]:
    span = _dbapi.connect_wrapper(settings, "sqlite")

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        with _errors.guard("sqlite3 connect"):
            args, kwargs = _traced_connection(args, kwargs)
        return span(wrapped, instance, args, kwargs)

    return wrapper


def _traced_connection(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``connect``'s arguments with the connection class asked for replaced by its traced subclass."""
    import sqlite3

    factory = kwargs.get("factory", args[5] if len(args) > 5 else sqlite3.Connection)
    if not (isinstance(factory, type) and issubclass(factory, sqlite3.Connection)):
        return args, kwargs
    traced = _dbapi.traced_subclass(factory, _CONNECTION_WRAPPERS, _connections)
    if len(args) > 5:
        return (*args[:5], traced, *args[6:]), kwargs
    return args, {**kwargs, "factory": traced}


def _cursor(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``Connection.cursor(factory=Cursor)``: the cursor class asked for, traced."""
    import sqlite3

    traced = None
    with _errors.guard("sqlite3 cursor"):
        factory = kwargs.get("factory", args[0] if args else sqlite3.Cursor)
        if _wrappers and isinstance(factory, type) and issubclass(factory, sqlite3.Cursor):
            traced = _dbapi.traced_subclass(factory, _CURSOR_WRAPPERS, _cursors)
    return wrapped(*args, **kwargs) if traced is None else wrapped(traced)


def _shortcut(name: str) -> Callable[..., Any]:
    """``Connection.execute`` and friends: sqlite3's own call the cursor's C code directly."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if not _wrappers:
            return wrapped(*args, **kwargs)
        return getattr(instance.cursor(), name)(*args, **kwargs)

    return wrapper


_CURSOR_WRAPPERS = {
    name: _dbapi.dispatch(_wrappers, name) for name in ("execute", "executemany", "executescript")
}
_CONNECTION_WRAPPERS = {
    "cursor": _cursor,
    "execute": _shortcut("execute"),
    "executemany": _shortcut("executemany"),
    "executescript": _shortcut("executescript"),
}
