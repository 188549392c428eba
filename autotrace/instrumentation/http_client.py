"""http.client (and so ``urllib.request``): one CLIENT span per request/response exchange.

Patched (the standard library, 3.9-3.13): ``http.client.HTTPConnection.putrequest`` starts the span,
``endheaders`` adds the propagation headers to the request being sent (the caller's own header objects
are never touched) and ``getresponse`` ends it once the status line and headers have arrived; a
failure in either (connection refused, timeout, DNS) ends it with the exception, which reaches the app
unchanged. The response body is read after the span has ended: the span times the exchange up to the
response headers. Libraries that make their own span for the exchange (urllib3, requests) make this
layer stand aside, so one exchange never gets two spans; every redirect hop or retry that reaches the
wire is its own exchange, so its own span.
"""

from __future__ import annotations

import weakref

from autotrace import _errors
from autotrace.instrumentation import _http_client, _web

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

TARGET = "http.client"
REQUIRES = None

_installer = _web.Installer(__name__)
_calls: weakref.WeakKeyDictionary[Any, _http_client.ClientCall] = weakref.WeakKeyDictionary()


def install(tracing: Any, config: Any) -> None:
    import http.client

    settings = _http_client.settings_for(tracing)
    cls = http.client.HTTPConnection
    _installer.start()
    _installer.wrap(cls, "putrequest", _putrequest(settings))
    _installer.wrap(cls, "endheaders", _endheaders)
    _installer.wrap(cls, "getresponse", _getresponse)


def uninstall() -> None:
    _installer.stop()
    _calls.clear()


def _putrequest(settings: _http_client.ClientSettings) -> Callable[..., Any]:
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        with _errors.guard("http.client request"):
            _start(settings, instance, args, kwargs)
        return wrapped(*args, **kwargs)

    return wrapper


def _start(
    settings: _http_client.ClientSettings, conn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    stale = _calls.pop(conn, None)
    if stale is not None:  # the previous request's response was never asked for
        stale.finish()
    if _http_client.busy():
        return
    method = str(args[0] if args else kwargs.get("method", "GET"))
    target = str(args[1] if len(args) > 1 else kwargs.get("url", "/"))
    import http.client

    scheme = "https" if isinstance(conn, http.client.HTTPSConnection) else "http"
    # urllib hands "user:pw@host" over as the host of a URL with credentials: never record them.
    host, port = str(conn.host).rpartition("@")[2], conn.port
    url = _http_client.full_url(scheme, host, port, target)
    _calls[conn] = _http_client.start(settings, method, url, host, port)


def _endheaders(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    call = _calls.get(instance)
    if call is not None:
        with _errors.guard("http.client inject"):
            for name, value in call.headers():
                instance.putheader(name, value)
            call.request_headers(_buffered_headers(instance))
    try:
        return wrapped(*args, **kwargs)
    except BaseException as exc:
        if call is not None:
            _calls.pop(instance, None)
            call.finish(exc)
        raise


def _buffered_headers(conn: Any) -> Callable[[str], list[str]]:
    """A look-up of the headers already put on ``conn``: http.client keeps them, encoded, in its
    private ``_buffer`` (the request line first) until ``endheaders`` sends them (3.9-3.13)."""

    def lookup(name: str) -> list[str]:
        wanted = name.lower()
        values = []
        for line in conn._buffer[1:]:
            key, _, value = bytes(line).decode("latin-1").partition(":")
            if key.strip().lower() == wanted:
                values.append(value.strip())
        return values

    return lookup


def _getresponse(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    call = _calls.pop(instance, None)
    try:
        response = wrapped(*args, **kwargs)
    except TypeError as exc:
        # urllib3 1.26 first tries ``getresponse(buffering=True)`` and, on TypeError, asks again
        # without it: the exchange is still going on, so the span waits for that second call.
        if call is not None and kwargs:
            _calls[instance] = call
        elif call is not None:
            call.finish(exc)
        raise
    except BaseException as exc:
        if call is not None:
            call.finish(exc)
        raise
    if call is not None:
        with _errors.guard("http.client response"):
            version = {10: "1.0", 11: "1.1"}.get(getattr(response, "version", 0))
            headers = response.headers
            call.response(response.status, lambda name: headers.get_all(name) or [], version)
        call.finish()
    return response
