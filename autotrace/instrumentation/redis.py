"""redis-py, sync and asyncio: one CLIENT span per command, one per pipeline or transaction.

Patched (written against redis-py 8.1; the same methods exist since 4.0, the asyncio client since
4.2): ``redis.client.Redis.execute_command``, which every command method (``get``, ``set``,
``hset`` ...) and every hand-made ``execute_command`` goes through once, with its retries inside;
``redis.client.Pipeline.execute``, which sends a whole pipeline or ``MULTI``/``EXEC`` transaction; and
``Pipeline.immediate_execute_command``, which runs a command at once while the pipeline is WATCHing
(``watch``, reads before ``multi()``). The ``redis.asyncio.client`` twins are patched when that module
is imported. Commands queued on a pipeline make no span of their own: the pipeline's span covers them.
What redis-py sends by itself (``HELLO``, ``AUTH``, ``SELECT``, ``CLIENT SETNAME`` when a connection
opens, health-check ``PING``s, ``UNWATCH`` on reset) goes straight to the connection and is part of
the span of the command that needed it, never a span of its own. Not traced: Redis Cluster clients,
pub/sub message streams and ``MONITOR``.

Attributes: ``db.system.name`` ``redis``; ``db.namespace``, the database index (``"0"``);
``server.address`` and ``server.port`` from the client's connection pool (a unix socket's path as the
address, no port); ``db.operation.name``, the command as redis-py sends it, upper-case, with both
words of a two-word command (``GET``, ``CLIENT SETNAME``, ``CONFIG GET``); the span is named after it.
``db.query.text`` is the command followed by one ``?`` per argument (``SET ? ? ? ?`` for
``set("k", "v", ex=5)``, which sends ``SET k v EX 5``): keys and values are never recorded.
``AUTH`` and ``HELLO``, which can carry credentials, are recorded as the bare command.
``AUTOTRACE_DB_STATEMENT=raw`` records the real arguments, separated by spaces (except for ``AUTH``,
``HELLO``, and ``ACL SETUSER``, ``CONFIG SET`` and ``MIGRATE``, which can carry passwords and keep
their ``?``); ``off`` records no text. The text is cut at 1000 characters.

A pipeline's span: ``db.query.text`` has one line per queued command, as above;
``db.operation.batch.size`` is the number of commands (two or more); ``db.operation.name`` and the span
name are ``BATCH SET`` when all the commands are ``SET``, otherwise ``MULTI`` for a transaction and
``PIPELINE`` for a plain pipeline (a pipeline of one command is named after the command).

A failed command or pipeline sets the span's status to ERROR with ``error.type`` (the exception's
class, ``redis.exceptions.ResponseError``) and an ``exception`` event whose message has quoted values
and numbers replaced by ``?`` and the pipeline's own ``Command # 1 (...)`` prefix, which quotes the
command, removed. ``db.response.status_code`` is the error prefix the server sent (``WRONGTYPE``,
``ERR``, ``NOAUTH``). A transaction aborted because a WATCHed key changed (``WatchError``) is an
error too. The exception reaches the app unchanged.
"""

from __future__ import annotations

import re

from opentelemetry.trace import SpanKind, Status, StatusCode

from autotrace import _errors, sql
from autotrace import semconv as sc
from autotrace.instrumentation import _dbapi
from autotrace.instrumentation._installer import Installer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import ModuleType
    from typing import Any, Callable

    from opentelemetry.trace import Span

TARGET = "redis.client"
REQUIRES = "redis >= 4.0"

MAX_TEXT = 1000
# Commands whose arguments can be credentials: never even counted.
_CREDENTIALS = frozenset({"AUTH", "HELLO"})
# Commands that can carry a password among other arguments: ``?`` even when statements are raw.
_SECRET_ARGUMENTS = frozenset({"ACL SETUSER", "CONFIG SET", "MIGRATE"})
# Commands whose second word names the operation, when the app sends the two words apart.
_CONTAINERS = frozenset(
    {"ACL", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "FUNCTION", "LATENCY", "MEMORY", "MODULE", "OBJECT"}
    | {"PUBSUB", "SCRIPT", "SLOWLOG", "XGROUP", "XINFO"}
)
_SUBCOMMAND = re.compile(r"[A-Za-z][A-Za-z_-]{0,31}\Z")
# redis-py prefixes a pipeline's error with the failed command, keys and values included.
_PIPELINE_PREFIX = re.compile(r"Command # \d+ \(.*\) of pipeline caused error: ", re.DOTALL)
_ERROR_CODE = re.compile(r"([A-Z][A-Z0-9_-]+)(?: |\Z)")

_installer = Installer(__name__)
_current: dict[str, _dbapi.DbSettings] = {}  # the settings of the installed instrumentation
_targets: dict[tuple[Any, ...], _dbapi.Target] = {}


def install(tracing: Any, config: Any) -> None:
    import redis.client

    settings = _current["settings"] = _dbapi.settings_for(tracing)
    _installer.start()
    command = _command(settings)
    _installer.wrap(redis.client.Redis, "execute_command", command)
    _installer.wrap(redis.client.Pipeline, "immediate_execute_command", command)
    _installer.wrap(redis.client.Pipeline, "execute", _pipeline(settings))
    _installer.when_imported("redis.asyncio.client", _patch_asyncio)


def uninstall() -> None:
    _current.clear()
    _installer.stop()


def _patch_asyncio(module: ModuleType) -> None:
    settings = _current.get("settings")  # the current install's, whenever the module comes
    if settings is None:
        return
    command = _command_async(settings)
    _installer.wrap(module.Redis, "execute_command", command)
    _installer.wrap(module.Pipeline, "immediate_execute_command", command)
    _installer.wrap(module.Pipeline, "execute", _pipeline_async(settings))


class _Call(_dbapi.DbCall):
    """A command's span: errors recorded as Redis reports them."""

    __slots__ = ()

    def finish(self, exc: BaseException | None = None) -> None:
        if exc is not None and not self.ended and isinstance(exc, Exception):
            with _errors.guard("redis error"):
                _record_error(self.span, exc, self.raw)
        super().finish()


def _command_begin(settings: _dbapi.DbSettings) -> Callable[..., Any]:
    def begin(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return (_start_command(settings, instance, args) if args else None), args, kwargs

    return begin


def _pipeline_begin(settings: _dbapi.DbSettings) -> Callable[..., Any]:
    return lambda instance, args, kwargs: (_start_pipeline(settings, instance), args, kwargs)


def _command(settings: _dbapi.DbSettings) -> Callable[..., Any]:
    return _dbapi.traced("redis command", _command_begin(settings))


def _command_async(settings: _dbapi.DbSettings) -> Callable[..., Any]:
    return _dbapi.traced_async("redis command", _command_begin(settings))


def _pipeline(settings: _dbapi.DbSettings) -> Callable[..., Any]:
    return _dbapi.traced("redis pipeline", _pipeline_begin(settings))


def _pipeline_async(settings: _dbapi.DbSettings) -> Callable[..., Any]:
    return _dbapi.traced_async("redis pipeline", _pipeline_begin(settings))


def _start_command(settings: _dbapi.DbSettings, client: Any, args: tuple[Any, ...]) -> _Call:
    name, first = command_name(args)
    attributes = dict(_target(client).attributes)
    attributes[sc.DB_OPERATION_NAME] = name
    text = command_text(settings.statement, name, args, first)
    if text is not None:
        attributes[sc.DB_QUERY_TEXT] = text
    return _start(settings, name, attributes)


def _start_pipeline(settings: _dbapi.DbSettings, pipe: Any) -> _Call | None:
    commands = [args for args, _options in pipe.command_stack]
    if not commands and not getattr(pipe, "watching", False):
        return None  # redis-py returns [] without a word to the server
    name, attributes = pipeline_attributes(settings.statement, commands, _is_transaction(pipe))
    return _start(settings, name, {**_target(pipe).attributes, **attributes})


def _start(settings: _dbapi.DbSettings, name: str, attributes: dict[str, Any]) -> _Call:
    span = settings.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
    return _Call(span, raw=settings.statement == "raw")


def _is_transaction(pipe: Any) -> bool:
    # The sync pipeline keeps the flag in ``transaction``; the asyncio one in ``is_transaction``
    # (there ``transaction`` is the client's method).
    flag = getattr(pipe, "is_transaction", None)
    if not isinstance(flag, bool):
        flag = getattr(pipe, "transaction", False)
    return flag is True or getattr(pipe, "explicit_transaction", False) is True


def _target(client: Any) -> _dbapi.Target:
    """Where the client's pool connects, read at each call: redis-py can move a pool's endpoint."""
    kwargs = client.connection_pool.connection_kwargs
    key = (kwargs.get("host"), kwargs.get("port"), kwargs.get("path"), kwargs.get("db", 0))
    found = _targets.get(key)
    if found is None:
        if len(_targets) >= 64:
            _targets.clear()
        host, port, path, db = key
        address, port = (path, None) if path else (host, port)
        namespace = None if db is None else str(db)
        found = _targets[key] = _dbapi.Target("redis", namespace=namespace, address=address, port=port)
    return found


def command_name(args: Sequence[Any]) -> tuple[str, int]:
    """The command's name, upper-case, and the index of its first argument.

    redis-py sends two-word commands as one (``"CLIENT SETNAME"``); an app may send the words apart.
    """
    name = _text(args[0], 64).upper()
    if name in _CONTAINERS and len(args) > 1 and isinstance(args[1], (str, bytes)):
        sub = _text(args[1], 33)
        if _SUBCOMMAND.match(sub):
            return f"{name} {sub.upper()}", 2
    return name, 1


def command_text(mode: str, name: str, args: Sequence[Any], first: int) -> str | None:
    """``db.query.text`` of one command: ``?`` for each argument, or the arguments themselves."""
    if mode == "off":
        return None
    if name in _CREDENTIALS:
        return name
    if mode == "raw" and name not in _SECRET_ARGUMENTS:
        return _raw_text(name, args, first)
    count = min(len(args) - first, MAX_TEXT // 2)
    return (name + " ?" * count)[:MAX_TEXT]


def _raw_text(name: str, args: Sequence[Any], first: int) -> str:
    parts = [name]
    length = len(name)
    for value in args[first:]:
        room = MAX_TEXT - length - 1
        if room <= 0:
            break
        piece = _text(value, room)
        parts.append(piece)
        length += 1 + len(piece)
    return " ".join(parts)[:MAX_TEXT]


def _text(value: Any, limit: int) -> str:
    """At most ``limit`` characters of a command's word, read without copying a large value whole."""
    if isinstance(value, str):
        return value[:limit]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value[: limit * 4]).decode("utf-8", "replace")[:limit]
    return str(value)[:limit]


def pipeline_attributes(
    mode: str, commands: Sequence[Sequence[Any]], transaction: bool
) -> tuple[str, dict[str, Any]]:
    """The span name and attributes of a pipeline of ``commands`` (each the args of one command)."""
    names = [command_name(args) for args in commands if args]
    distinct = {name for name, _first in names}
    if len(names) == 1:
        operation = names[0][0]
    elif len(distinct) == 1:
        operation = f"BATCH {names[0][0]}"
    else:
        operation = "MULTI" if transaction else "PIPELINE"
    attributes: dict[str, Any] = {sc.DB_OPERATION_NAME: operation}
    if len(names) >= 2:
        attributes[sc.DB_OPERATION_BATCH_SIZE] = len(names)
    text = _pipeline_text(mode, [args for args in commands if args], names)
    if text:
        attributes[sc.DB_QUERY_TEXT] = text
    return operation, attributes


def _pipeline_text(mode: str, commands: Sequence[Sequence[Any]], names: list[tuple[str, int]]) -> str:
    lines: list[str] = []
    length = 0
    for args, (name, first) in zip(commands, names):
        if length >= MAX_TEXT:
            break
        line = command_text(mode, name, args, first)
        if line is None:
            return ""
        lines.append(line)
        length += len(line) + 1
    return "\n".join(lines)[:MAX_TEXT]


def _record_error(span: Span, exc: Exception, raw: bool) -> None:
    if not span.is_recording():
        return
    message = server_message(exc)
    span.record_exception(exc, attributes=_exception_event(exc, message, raw), escaped=True)
    span.set_attribute(sc.ERROR_TYPE, _dbapi.qualified_name(type(exc)))
    code = response_code(exc, message)
    if code:
        span.set_attribute(sc.DB_RESPONSE_STATUS_CODE, code)
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


def server_message(exc: BaseException) -> str:
    """The first line of the error, without the failed command redis-py puts before a pipeline's."""
    text = str(exc)
    found = _PIPELINE_PREFIX.match(text)
    if found:
        text = text[found.end() :]
    text = text.strip()
    return text.splitlines()[0] if text else ""


def response_code(exc: BaseException, message: str) -> str | None:
    """The server's error prefix: redis-py 8 keeps it apart (``status_code``) for the errors it maps
    to their own classes and strips it from the message; other errors still start with it."""
    import redis.exceptions

    code = getattr(exc, "status_code", None)
    if isinstance(code, str) and code:
        return code
    if isinstance(exc, redis.exceptions.ResponseError):
        found = _ERROR_CODE.match(message)
        if found:
            return found.group(1)
    return None


def _exception_event(exc: BaseException, message: str, raw: bool) -> dict[str, str]:
    """The ``exception`` event's message and stack; servers quote keys and arguments in messages
    (``unknown command 'x', with args beginning with: 'k'``): they become ``?`` unless raw."""
    import traceback

    if not raw:
        message = sql.sanitize(message[:MAX_TEXT], mysql=True)
    kind = _dbapi.qualified_name(type(exc))
    head = f"{kind}: {message}" if message else kind
    frames = "".join(traceback.format_tb(exc.__traceback__))
    return {
        "exception.message": message,
        "exception.stacktrace": f"Traceback (most recent call last):\n{frames}{head}\n",
    }
