"""uvicorn: every HTTP request to the app it serves gets a SERVER span.

Patched: ``uvicorn.config.Config.load`` (written against uvicorn 0.30-0.54). Once uvicorn has loaded
the app, our ASGI middleware is placed right inside uvicorn's own proxy-headers and message-logger
layers, so ``client.address`` is the one they resolved. A WSGI app served by uvicorn
(``--interface wsgi``) is traced inside uvicorn's WSGI adapter instead
(``uvicorn.middleware.wsgi.WSGIMiddleware.__init__``), in the thread that runs it. Lifespan and
WebSocket scopes pass through untouched. Works the same under gunicorn's ``uvicorn.workers`` classes.
"""

from __future__ import annotations

from autotrace import _errors
from autotrace.instrumentation import _web

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any, Callable

TARGET = "uvicorn.config"
REQUIRES = "uvicorn >= 0.20"

_installer = _web.Installer(__name__)
_OUTER_LAYERS = ("ProxyHeadersMiddleware", "MessageLoggerMiddleware")


def install(tracing: Any, config: Any) -> None:
    import uvicorn.config

    settings = _web.settings_for(tracing)
    _installer.start()
    _installer.wrap(uvicorn.config.Config, "load", _after_load(_web.asgi(settings)))

    def patch_wsgi_adapter(module: ModuleType) -> None:
        wrapper = _web.replace_argument(0, "app", _web.wsgi(settings))
        _installer.wrap(module.WSGIMiddleware, "__init__", wrapper)

    _installer.when_imported("uvicorn.middleware.wsgi", patch_wsgi_adapter)


def uninstall() -> None:
    _installer.stop()


def _after_load(make: Callable[[Any], Any]) -> Callable[..., Any]:
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        result = wrapped(*args, **kwargs)
        with _errors.guard("wrapping the uvicorn app"):
            _insert(instance, make)
        return result

    return wrapper


def _insert(config: Any, make: Callable[[Any], Any]) -> None:
    holder, attribute = config, "loaded_app"
    app: Any = getattr(holder, attribute, None)
    while type(app).__name__ in _OUTER_LAYERS and type(app).__module__.startswith("uvicorn."):
        holder, attribute, app = app, "app", app.app
    if app is None or type(app).__module__ == "uvicorn.middleware.wsgi":
        return  # a WSGI app: traced inside uvicorn's adapter
    if type(app).__module__.startswith("autotrace."):
        return
    setattr(holder, attribute, make(app))
