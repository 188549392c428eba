"""urllib.request: each exchange is one CLIENT span (made by the ``http.client`` instrumentation);
redirects followed by ``urlopen`` are counted as resends.

Patched here (the standard library): ``urllib.request.OpenerDirector.open``, only to number the hops of
one ``urlopen`` call in ``http.request.resend_count``.
"""

from __future__ import annotations

from autotrace.instrumentation import _http_client, _web

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

TARGET = "urllib.request"
REQUIRES = None

_installer = _web.Installer(__name__)


def install(tracing: Any, config: Any) -> None:
    import urllib.request

    _installer.start()
    _installer.wrap(urllib.request.OpenerDirector, "open", _http_client.logical_request)


def uninstall() -> None:
    _installer.stop()
