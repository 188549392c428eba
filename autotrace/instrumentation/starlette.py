"""Starlette and FastAPI: the matched route's path template names the request's SERVER span.

Patched (written against Starlette 0.27-1.10 and FastAPI 0.100-0.165, whose routes are Starlette's):

- ``starlette.routing.Route.handle``: the route the router chose; its ``path`` template (with any
  ``Mount`` prefixes before it, ``/api`` + ``/users/{user_id}``) becomes ``http.route`` and the span
  name ``GET /api/users/{user_id}``. Unmatched requests (404) keep the name ``METHOD``.
- ``starlette.routing.Mount.handle``: collects the mount prefixes, templates included.
- ``starlette.applications.Starlette.__call__``: makes the SERVER span when no server hook did (a
  server we do not know); a mounted sub-application never makes a second one.

Exceptions need no hook of their own: Starlette's outermost error middleware sends the 500 and then
re-raises, and the server layer records both.
"""

from __future__ import annotations

from autotrace import _errors
from autotrace.instrumentation import _web
from autotrace.middleware import _server

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any, Callable

TARGET = "starlette.routing"
REQUIRES = "starlette >= 0.27"

_installer = _web.Installer(__name__)


def install(tracing: Any, config: Any) -> None:
    import starlette.routing

    settings = _web.settings_for(tracing)
    _installer.start()
    _installer.wrap(starlette.routing.Mount, "handle", _mount_handle)
    _installer.wrap(starlette.routing.Route, "handle", _route_handle)

    def patch_application(module: ModuleType) -> None:
        _installer.wrap(module.Starlette, "__call__", _web.asgi_entry(settings))

    _installer.when_imported("starlette.applications", patch_application)


def uninstall() -> None:
    _installer.stop()


def _mount_handle(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    with _errors.guard("naming the route"):
        request = _server.current()
        if request is not None:
            prefix = _template(instance)  # a mount's template ends in /{path}: its sub-routes follow
            request.route_prefix += prefix[: -len("/{path}")] if prefix.endswith("/{path}") else prefix
    return wrapped(*args, **kwargs)


def _route_handle(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    with _errors.guard("naming the route"):
        request = _server.current()
        if request is not None:
            request.set_route(request.route_prefix + _template(instance))
    return wrapped(*args, **kwargs)


def _template(route: Any) -> str:
    """The route's path template without converters (``/users/{user_id:int}`` -> ``/users/{user_id}``)."""
    template = getattr(route, "path_format", None) or getattr(route, "path", "")
    return template if isinstance(template, str) else ""
