"""gunicorn: every request to a WSGI app served by gunicorn's own workers gets a SERVER span.

Patched: ``gunicorn.workers.base.Worker.load_wsgi`` (written against gunicorn 21-23 and 27). After a
worker has loaded the app, it is wrapped in our WSGI middleware, in each worker process, with or
without ``--preload``. Worker classes from other packages (``uvicorn.workers.UvicornWorker``) are left
to their own instrumentation, so an ASGI app is never mistaken for a WSGI one.
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

    make = _web.wsgi(_web.settings_for(tracing))
    _installer.start()
    _installer.wrap(gunicorn.workers.base.Worker, "load_wsgi", _after_load(make))


def uninstall() -> None:
    _installer.stop()


def _after_load(make: Callable[[Any], Any]) -> Callable[..., Any]:
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        result = wrapped(*args, **kwargs)
        with _errors.guard("wrapping the gunicorn app"):
            app = getattr(instance, "wsgi", None)
            ours = type(app).__module__.startswith("autotrace.")
            if app is not None and not ours and type(instance).__module__.startswith("gunicorn.workers."):
                instance.wsgi = make(app)
        return result

    return wrapper
