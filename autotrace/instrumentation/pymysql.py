"""PyMySQL (MySQL and MariaDB): one CLIENT span per ``execute`` or ``executemany``.

Everything here comes from the shared DB-API layer (``_dbapi``); the module only says which methods to
wrap and how to read a connection. Patched (written against PyMySQL 1.0-1.1):
``pymysql.cursors.Cursor.execute`` and ``executemany``, which ``DictCursor``, ``SSCursor`` (unbuffered)
and ``SSDictCursor`` inherit. ``executemany`` is one span for the batch (``db.operation.batch.size``),
whether PyMySQL sends it as one multi-row ``INSERT`` or as one statement per row. Fetching rows,
including from an unbuffered cursor, is not a span; ``callproc`` is not traced.

Attributes: ``db.system.name`` ``mariadb`` or ``mysql`` (from the server's version string),
``db.namespace`` (the database chosen at connect), ``server.address`` and ``server.port`` (or the unix
socket); a failed query records the server's error number (``1062`` for a duplicate key) in
``db.response.status_code``. MySQL's ``"..."`` strings and backslash escapes are sanitized as such.
"""

from __future__ import annotations

from autotrace.instrumentation import _dbapi
from autotrace.instrumentation._installer import Installer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

TARGET = "pymysql"
REQUIRES = "pymysql >= 1.0"

_installer = Installer(__name__)


def _read_target(connection: Any) -> _dbapi.Target:
    version = str(getattr(connection, "server_version", "") or "")
    system = "mariadb" if "mariadb" in version.lower() else "mysql"
    database = connection.db
    if isinstance(database, bytes):
        database = database.decode(connection.encoding or "utf-8", "replace")
    socket = connection.unix_socket
    address, port = (socket, None) if socket else (connection.host, connection.port)
    return _dbapi.Target(system, namespace=database, address=address, port=port, mysql=True)


_targets = _dbapi.TargetCache(_read_target)


def _target_of(cursor: Any) -> _dbapi.Target:
    return _targets(cursor.connection)


def install(tracing: Any, config: Any) -> None:
    import pymysql.connections
    import pymysql.cursors

    settings = _dbapi.settings_for(tracing)
    _installer.start()
    _installer.wrap(pymysql.cursors.Cursor, "execute", _dbapi.query_wrapper(settings, _target_of))
    _installer.wrap(
        pymysql.cursors.Cursor, "executemany", _dbapi.query_wrapper(settings, _target_of, batch=True)
    )
    _installer.wrap(pymysql.connections.Connection, "connect", _dbapi.connect_wrapper(settings, "mysql"))


def uninstall() -> None:
    _installer.stop()
