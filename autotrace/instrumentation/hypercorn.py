"""hypercorn: every HTTP request to the ASGI or WSGI app it serves gets a SERVER span.

Patched: ``hypercorn.app_wrappers.ASGIWrapper.__init__`` and ``WSGIWrapper.__init__`` (written against
hypercorn 0.14-0.18): the app hypercorn wraps is first wrapped in our ASGI or WSGI middleware. Lifespan
and WebSocket scopes pass through untouched.
"""

from __future__ import annotations

from autotrace.instrumentation import _web

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

TARGET = "hypercorn.app_wrappers"
REQUIRES = "hypercorn >= 0.14"

_installer = _web.Installer(__name__)


def install(tracing: Any, config: Any) -> None:
    import hypercorn.app_wrappers as wrappers

    settings = _web.settings_for(tracing)
    _installer.start()
    _installer.wrap(wrappers.ASGIWrapper, "__init__", _web.replace_argument(0, "app", _web.asgi(settings)))
    _installer.wrap(wrappers.WSGIWrapper, "__init__", _web.replace_argument(0, "app", _web.wsgi(settings)))


def uninstall() -> None:
    _installer.stop()
