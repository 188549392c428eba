"""werkzeug's development server (``flask run``, ``app.run()``, ``werkzeug.run_simple``).

Patched: ``werkzeug.serving.BaseWSGIServer.__init__`` (written against werkzeug 2.2-3.1): the app it
serves is wrapped in our WSGI middleware. Flask's own hook then names the route.
"""

from __future__ import annotations

from autotrace.instrumentation import _web

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

TARGET = "werkzeug.serving"
REQUIRES = "werkzeug >= 2.2"

_installer = _web.Installer(__name__)


def install(tracing: Any, config: Any) -> None:
    import werkzeug.serving

    wrapper = _web.replace_argument(2, "app", _web.wsgi(_web.settings_for(tracing)))
    _installer.start()
    _installer.wrap(werkzeug.serving.BaseWSGIServer, "__init__", wrapper)


def uninstall() -> None:
    _installer.stop()
