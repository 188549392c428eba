"""Django: the URL pattern names the request's SERVER span (``GET /users/<int:user_id>/``).

Patched (written against Django 4.2-5.2), each when its module is first imported after ``django``:

- ``django.core.handlers.wsgi.WSGIHandler.__call__`` and ``django.core.handlers.asgi.ASGIHandler.__call__``:
  make the SERVER span when no server hook did (uWSGI, mod_wsgi, daphne...). Django's settings and
  middleware list are never touched.
- ``django.core.handlers.base.BaseHandler.get_response`` / ``get_response_async``: once Django has
  answered, ``request.resolver_match.route`` gives ``http.route`` and the span name (a leading ``/``
  added; a ``re_path`` pattern shown without its ``^``/``$`` anchors). Unresolved requests (404) keep
  the name ``METHOD``.
- ``django.core.handlers.exception.handle_uncaught_exception``: an exception Django turns into its 500
  response is recorded on the span (``exception`` event, ``error.type``, status ERROR).
"""

from __future__ import annotations

from autotrace import _errors
from autotrace.instrumentation import _web

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any, Callable

TARGET = "django"
REQUIRES = "django >= 4.2"

_installer = _web.Installer(__name__)


def install(tracing: Any, config: Any) -> None:
    settings = _web.settings_for(tracing)
    _installer.start()

    def patch_base(module: ModuleType) -> None:
        _installer.wrap(module.BaseHandler, "get_response", _get_response)
        _installer.wrap(module.BaseHandler, "get_response_async", _get_response_async)

    def patch_exception(module: ModuleType) -> None:
        _installer.wrap(module, "handle_uncaught_exception", _uncaught)

    def patch_wsgi(module: ModuleType) -> None:
        _installer.wrap(module.WSGIHandler, "__call__", _web.wsgi_entry(settings))

    def patch_asgi(module: ModuleType) -> None:
        _installer.wrap(module.ASGIHandler, "__call__", _web.asgi_entry(settings))

    # Installed when ``django`` is imported, before any of these: each is patched as it loads.
    _installer.when_imported("django.core.handlers.exception", patch_exception)
    _installer.when_imported("django.core.handlers.base", patch_base)
    _installer.when_imported("django.core.handlers.wsgi", patch_wsgi)
    _installer.when_imported("django.core.handlers.asgi", patch_asgi)


def uninstall() -> None:
    _installer.stop()


def route_template(route: str | None) -> str | None:
    """Django's route as an ``http.route``: ``users/<int:pk>`` -> ``/users/<int:pk>``, the root's
    empty route -> ``/``; None when no route matched."""
    if route is None:
        return None
    if route.startswith("^"):
        route = route[1:]
    if route.endswith("$"):
        route = route[:-1]
    return route if route.startswith("/") else "/" + route


def _name_route(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    with _errors.guard("naming the route"):
        request = args[0] if args else kwargs.get("request")
        match = getattr(request, "resolver_match", None)
        _web.set_route(route_template(getattr(match, "route", None)))


def _get_response(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    try:
        return wrapped(*args, **kwargs)
    finally:
        _name_route(args, kwargs)


async def _get_response_async(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    try:
        return await wrapped(*args, **kwargs)
    finally:
        _name_route(args, kwargs)


def _uncaught(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    with _errors.guard("recording an exception"):
        exc_info = args[2] if len(args) > 2 else kwargs.get("exc_info")
        _web.record_exception(exc_info[1] if exc_info else None)
    return wrapped(*args, **kwargs)
