"""Shared pieces of the server and framework instrumentations.

Servers wrap the app they are given in our middleware; frameworks wrap their own entry point the same
way (for servers we do not hook) and then name the route. Whichever layer comes first makes the span;
the others find it through ``_server.current()`` and only add to it.
"""

from __future__ import annotations

import functools

from autotrace import _errors
from autotrace.instrumentation._installer import Installer
from autotrace.middleware import _server

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

__all__ = ["Installer", "asgi", "asgi_entry", "settings_for", "wsgi", "wsgi_entry"]

_settings: dict[int, _server.ServerSettings] = {}


def settings_for(tracing: Any) -> _server.ServerSettings:
    """One ServerSettings per SDK set-up, shared by every web instrumentation."""
    found = _settings.get(id(tracing))
    if found is None or found.tracer is None:
        found = _settings[id(tracing)] = _server.ServerSettings.from_tracing(tracing)
    return found


def replace_argument(index: int, name: str, make: Callable[[Any], Any]) -> Callable[..., Any]:
    """A wrapper that hands the wrapped callable ``make(argument)`` in place of one argument."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        with _errors.guard("wrapping the app"):
            if len(args) > index:
                args = (*args[:index], make(args[index]), *args[index + 1 :])
            elif name in kwargs:
                kwargs = {**kwargs, name: make(kwargs[name])}
        return wrapped(*args, **kwargs)

    return wrapper


def asgi(settings: _server.ServerSettings) -> Callable[[Any], Any]:
    from autotrace.middleware.asgi import ASGIMiddleware

    return lambda app: ASGIMiddleware(app, settings)


def wsgi(settings: _server.ServerSettings) -> Callable[[Any], Any]:
    from autotrace.middleware.wsgi import WSGIMiddleware

    return lambda app: WSGIMiddleware(app, settings)


def asgi_entry(settings: _server.ServerSettings) -> Callable[..., Any]:
    """Wrapper for a framework's ASGI ``__call__``: a span unless a server layer made one already."""
    from autotrace.middleware.asgi import ASGIMiddleware

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        app = wrapped
        with _errors.guard("server entry"):
            if not _server.handled():
                app = ASGIMiddleware(wrapped, settings)
        return app(*args, **kwargs)

    return wrapper


def wsgi_entry(
    settings: _server.ServerSettings, after: Callable[[Any], None] | None = None
) -> Callable[..., Any]:
    """Wrapper for a framework's WSGI entry; ``after(environ)`` runs once the framework has answered
    (and matched its route), with the request's span still open."""
    from autotrace.middleware.wsgi import WSGIMiddleware

    def call(wrapped: Callable[..., Any], environ: Any, start_response: Any) -> Any:
        try:
            return wrapped(environ, start_response)
        finally:
            if after is not None:
                with _errors.guard("naming the route"):
                    after(environ)

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        app: Callable[..., Any] = wrapped
        with _errors.guard("server entry"):
            # Called as a WSGI server calls it, (environ, start_response); any other call passes by.
            if len(args) == 2 and not kwargs:
                app = functools.partial(call, wrapped)
                if not _server.handled():
                    app = WSGIMiddleware(app, settings)
        return app(*args, **kwargs)

    return wrapper


def set_route(template: str | None) -> None:
    request = _server.current()
    if request is not None and template:
        request.set_route(template)


def record_exception(exc: BaseException | None) -> None:
    """A framework turned ``exc`` into an error response: put it on the request's span."""
    request = _server.current()
    if request is not None and exc is not None:
        request.record_exception(exc)
