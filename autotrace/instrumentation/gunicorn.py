"""gunicorn: every request to a WSGI app served by gunicorn's own workers gets a SERVER span.

Patched: ``gunicorn.workers.base.Worker.load_wsgi`` (written against gunicorn 21-23 and 27). After a
worker has loaded the app, it is wrapped in our WSGI middleware, in each worker process, with or
without ``--preload``: gunicorn's sync, gthread, gevent and eventlet workers. gunicorn 27's own ASGI
worker (``-k asgi``, ``ASGIWorker.load_wsgi``) gets our ASGI middleware instead. The tornado worker
(``-k tornado``) serves Tornado applications, which are not WSGI: it is left alone. Worker classes
from other packages (``uvicorn.workers.UvicornWorker``) are left to their own instrumentation, so an
ASGI app is never mistaken for a WSGI one.
"""

from __future__ import annotations

from autotrace import _errors
from autotrace.instrumentation import _web

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

TARGET = "gunicorn.workers.base"
REQUIRES = "gunicorn >= 20"

_installer = _web.Installer(__name__)


def install(tracing: Any, config: Any) -> None:
    import gunicorn.workers.base

    settings = _web.settings_for(tracing)
    make = _web.wsgi(settings)
    _installer.start()
    _installer.wrap(gunicorn.workers.base.Worker, "load_wsgi", _after_load(make))
    make_asgi = _web.asgi(settings)

    def patch_asgi(module: Any) -> None:
        _installer.wrap(module.ASGIWorker, "load_wsgi", _after_load(make_asgi, attribute="asgi"))

    _installer.when_imported("gunicorn.workers.gasgi", patch_asgi)


def uninstall() -> None:
    _installer.stop()


# gunicorn's workers whose app is not a WSGI callable, for the WSGI wrapper.
_NOT_WSGI = ("gunicorn.workers.gtornado", "gunicorn.workers.gasgi")


def _after_load(make: Callable[[Any], Any], attribute: str = "wsgi") -> Callable[..., Any]:
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        result = wrapped(*args, **kwargs)
        with _errors.guard("wrapping the gunicorn app"):
            app = getattr(instance, attribute, None)
            ours = type(app).__module__.startswith("autotrace.")
            module = type(instance).__module__
            ours_to_wrap = module.startswith("gunicorn.workers.") and (
                attribute == "asgi" or module not in _NOT_WSGI
            )
            if app is not None and not ours and ours_to_wrap:
                setattr(instance, attribute, make(app))
        return result

    return wrapper
