"""waitress: every request to the WSGI app it serves gets a SERVER span.

Patched: ``waitress.server.create_server`` (written against waitress 2.1-3.0), which ``waitress.serve``
and ``waitress-serve`` both go through: the app is wrapped in our WSGI middleware.
"""

from __future__ import annotations

from autotrace.instrumentation import _web

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

TARGET = "waitress.server"
REQUIRES = "waitress >= 2.0"

_installer = _web.Installer(__name__)


def install(tracing: Any, config: Any) -> None:
    import waitress.server

    wrapper = _web.replace_argument(0, "application", _web.wsgi(_web.settings_for(tracing)))
    _installer.start()
    _installer.wrap(waitress.server, "create_server", wrapper)


def uninstall() -> None:
    _installer.stop()
