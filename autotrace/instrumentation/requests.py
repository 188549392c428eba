"""requests: each exchange on the wire is one CLIENT span; redirects are counted as resends.

requests sends through urllib3 and ``http.client``, whose instrumentation makes the span of every
exchange (so every redirect hop and every retry is its own span, siblings under the same parent) and
puts the trace context on the wire without touching the caller's headers or ``PreparedRequest``.
Patched here (written against requests 2.28-2.32): ``requests.sessions.Session.send``, only to number
the hops of one call in ``http.request.resend_count`` (1 for the first redirect or retry, 2 ...).
"""

from __future__ import annotations

from autotrace.instrumentation import _http_client, _web

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

TARGET = "requests.sessions"
REQUIRES = "requests >= 2.20"

_installer = _web.Installer(__name__)


def install(tracing: Any, config: Any) -> None:
    import requests.sessions

    _installer.start()
    _installer.wrap(requests.sessions.Session, "send", _http_client.logical_request)


def uninstall() -> None:
    _installer.stop()
