"""Flask: the route template names the request's SERVER span (``GET /users/<int:user_id>``).

Patched (written against Flask 2.2-3.1):

- ``flask.app.Flask.wsgi_app``: makes the SERVER span when no server hook did (uWSGI, mod_wsgi, any
  server we do not know).
- ``flask.app.Flask.full_dispatch_request``: the rule Flask matched (``request.url_rule``) gives
  ``http.route`` and the span name. Unmatched requests (404) keep the name ``METHOD``.
- ``flask.app.Flask.handle_exception``: an unhandled exception Flask turns into its 500 response is
  recorded on the span (``exception`` event, ``error.type``, status ERROR) with the 500 it sends.

Classes are patched, not swapped, so ``from flask import Flask`` before anything else is still traced.
"""

from __future__ import annotations

from autotrace import _errors
from autotrace.instrumentation import _web

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

TARGET = "flask"
REQUIRES = "flask >= 2.2"

_installer = _web.Installer(__name__)


def install(tracing: Any, config: Any) -> None:
    import flask.app

    settings = _web.settings_for(tracing)
    _installer.start()
    _installer.wrap(flask.app.Flask, "wsgi_app", _web.wsgi_entry(settings))
    _installer.wrap(flask.app.Flask, "full_dispatch_request", _name_route)
    _installer.wrap(flask.app.Flask, "handle_exception", _record_exception)


def uninstall() -> None:
    _installer.stop()


def _name_route(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    with _errors.guard("naming the route"):
        from flask import request

        rule = getattr(request, "url_rule", None)
        _web.set_route(getattr(rule, "rule", None))
    return wrapped(*args, **kwargs)


def _record_exception(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    with _errors.guard("recording an exception"):
        _web.record_exception(args[0] if args else kwargs.get("e"))
    return wrapped(*args, **kwargs)
