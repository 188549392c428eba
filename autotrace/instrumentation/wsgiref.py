"""wsgiref: every request to an app served by the standard library's ``wsgiref.simple_server``.

Patched: ``wsgiref.simple_server.WSGIServer.set_app``, which ``make_server`` calls: the app is wrapped
in our WSGI middleware. For development and tests; the standard library, so no version requirement.
"""

from __future__ import annotations

from autotrace.instrumentation import _web

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

TARGET = "wsgiref.simple_server"
REQUIRES = None

_installer = _web.Installer(__name__)


def install(tracing: Any, config: Any) -> None:
    import wsgiref.simple_server

    wrapper = _web.replace_argument(0, "application", _web.wsgi(_web.settings_for(tracing)))
    _installer.start()
    _installer.wrap(wsgiref.simple_server.WSGIServer, "set_app", wrapper)


def uninstall() -> None:
    _installer.stop()
