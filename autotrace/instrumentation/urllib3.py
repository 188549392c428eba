"""urllib3 (1.26 and 2.x): each exchange on the wire is one CLIENT span; retries and redirects are
counted as resends.

urllib3 sends through ``http.client``, whose instrumentation makes the span of every exchange and puts
the trace context on the wire. Patched here, only to number retries and redirects in
``http.request.resend_count``: ``urllib3.connectionpool.HTTPConnectionPool.urlopen``, which a pool
calls again for each retry and same-host redirect, and ``urllib3.poolmanager.PoolManager.urlopen``,
which a pool manager (and ``ProxyManager``) calls again for each redirect it follows itself.
"""

from __future__ import annotations

from autotrace.instrumentation import _http_client, _web

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

TARGET = "urllib3.connectionpool"
REQUIRES = "urllib3 >= 1.26"

_installer = _web.Installer(__name__)


def install(tracing: Any, config: Any) -> None:
    import urllib3.connectionpool
    import urllib3.poolmanager

    _installer.start()
    _installer.wrap(urllib3.connectionpool.HTTPConnectionPool, "urlopen", _http_client.logical_request)
    _installer.wrap(urllib3.poolmanager.PoolManager, "urlopen", _http_client.logical_request)


def uninstall() -> None:
    _installer.stop()
