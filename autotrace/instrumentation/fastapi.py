"""FastAPI: one SERVER span per request, named by the route FastAPI selected.

FastAPI's routes are Starlette's, so the Starlette instrumentation names most of them. This module
adds what newer FastAPI releases (0.16x, written against 0.165) do differently:

- ``fastapi.applications.FastAPI.__call__``: FastAPI's own request telemetry switches itself on as
  soon as a tracer provider is set, which would make a second SERVER span. For each HTTP request we
  trace, the scope is marked the way FastAPI marks requests it must not observe
  (``scope["fastapi.telemetry"] = None``); the SERVER span is ours, made here if no server hook
  made it. WebSocket connections are left to FastAPI.
- ``fastapi.routing._route_selected``: FastAPI's router picks routes itself (included routers are no
  longer copied into the app); the path template it reports, prefixes included, names the span.
"""

from __future__ import annotations

from autotrace import _errors
from autotrace.instrumentation import _web
from autotrace.middleware import _server

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

TARGET = "fastapi.applications"
REQUIRES = "fastapi >= 0.100"

_installer = _web.Installer(__name__)
_TELEMETRY_KEY = "fastapi.telemetry"


def install(tracing: Any, config: Any) -> None:
    import fastapi.applications
    import fastapi.routing

    settings = _web.settings_for(tracing)
    _installer.start()
    _installer.wrap(fastapi.applications.FastAPI, "__call__", _entry(settings))
    if hasattr(fastapi.routing, "_route_selected"):
        _installer.wrap(fastapi.routing, "_route_selected", _route_selected)


def uninstall() -> None:
    _installer.stop()


def _entry(settings: _server.ServerSettings) -> Callable[..., Any]:
    from autotrace.middleware.asgi import ASGIMiddleware

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        def call(scope: Any, receive: Any, send: Any) -> Any:
            with _errors.guard("fastapi telemetry"):
                if scope.get("type") == "http" and _server.handled():
                    scope.setdefault(_TELEMETRY_KEY, None)
            return wrapped(scope, receive, send)

        app: Callable[..., Any] = wrapped
        with _errors.guard("server entry"):
            scope = args[0] if args else kwargs.get("scope", {})
            app = call
            if scope.get("type") == "http" and not _server.handled():
                app = ASGIMiddleware(call, settings)
        return app(*args, **kwargs)

    return wrapper


def _route_selected(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    result = wrapped(*args, **kwargs)
    with _errors.guard("naming the route"):
        path = kwargs.get("path")
        request = _server.current()
        # A mount's prefix is added by the Starlette instrumentation when the mount handles the request.
        if request is not None and isinstance(path, str) and not kwargs.get("mount", False):
            request.set_route(request.route_prefix + path)
    return result
